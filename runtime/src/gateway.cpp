#include "colony/runtime/gateway.hpp"

#include <caf/all.hpp>

#include "colony/actors/wire.hpp"
#include "colony/runtime/log.hpp"

namespace colony::runtime {

using namespace actors;

namespace {

std::string encode(const entity_reply& r) { return to_wire(r).SerializeAsString(); }

struct gateway_state {
  std::shared_ptr<entity_router> router;
  std::chrono::milliseconds timeout{};
  static inline const char* name = "colony.gateway";
};

caf::behavior gateway(caf::stateful_actor<gateway_state>* self, std::shared_ptr<entity_router> router,
                      std::chrono::milliseconds timeout) {
  self->state.router = std::move(router);
  self->state.timeout = timeout;
  return {
    [self](gateway_atom, const std::string& bytes) -> caf::result<std::string> {
      v1::EntityCommand w;
      std::string error;
      std::optional<addressed_command> in;
      if (!w.ParseFromString(bytes))
        error = "not a colony.v1.EntityCommand";
      else
        in = from_wire(w, error);
      if (!in) {
        log::warn("gateway refused a command", {{"error", error}});
        return encode(entity_reply::fail(fail(errc::malformed, error)));
      }
      auto target = self->state.router->route(in->key, in->cmd.new_id);
      if (!target)
        return encode(entity_reply::fail(fail(errc::unavailable, "the node is shutting down")));
      auto rp = self->make_response_promise<std::string>();
      self->request(target, self->state.timeout, std::move(in->cmd))
        .then([rp](entity_reply& r) mutable { rp.deliver(encode(r)); },
              [rp](caf::error& err) mutable { rp.deliver(encode(entity_reply::fail(failure_from(err)))); });
      return rp;
    },
  };
}

} // namespace

caf::actor spawn_gateway(caf::actor_system& sys, std::shared_ptr<entity_router> router,
                         std::chrono::milliseconds timeout) {
  return sys.spawn(gateway, std::move(router), timeout);
}

std::string encode_command(const entity_key& key, const command& cmd) { return to_wire(key, cmd).SerializeAsString(); }

entity_reply decode_reply(const std::string& bytes) {
  v1::EntityReply w;
  if (!w.ParseFromString(bytes))
    return entity_reply::fail(fail(errc::internal, "the reply is not a colony.v1.EntityReply"));
  return from_wire(w);
}

} // namespace colony::runtime
