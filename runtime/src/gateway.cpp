#include "colony/runtime/gateway.hpp"

#include <caf/all.hpp>

#include "colony/actors/wire.hpp"
#include "colony/runtime/log.hpp"

namespace colony::runtime {

using namespace actors;

void serve_wire_command(caf::event_based_actor* self, entity_router& router, const std::string& bytes,
                        const std::function<std::string(const entity_key&)>& refuse,
                        std::function<void(std::string)> done) {
  v1::EntityCommand w;
  std::string error;
  std::optional<addressed_command> in;
  if (!w.ParseFromString(bytes))
    error = "not a colony.v1.EntityCommand";
  else
    in = from_wire(w, error);
  if (in && refuse)
    error = refuse(in->key);
  if (!in || !error.empty()) {
    log::warn("a command from another node was refused", {{"error", error}});
    return done(encode_reply(entity_reply::fail(fail(errc::malformed, error))));
  }
  auto target = router.route(in->key, in->cmd.new_id);
  if (!target)
    return done(encode_reply(entity_reply::fail(fail(errc::unavailable, "the node is shutting down"))));
  self->request(target, caf::infinite, std::move(in->cmd))
    .then([done](entity_reply& r) { done(encode_reply(r)); },
          [done](caf::error& err) { done(encode_reply(entity_reply::fail(failure_from(err)))); });
}

std::string encode_command(const entity_key& key, const command& cmd) { return to_wire(key, cmd).SerializeAsString(); }

std::string encode_reply(const entity_reply& r) { return to_wire(r).SerializeAsString(); }

entity_reply decode_reply(const std::string& bytes) {
  v1::EntityReply w;
  if (!w.ParseFromString(bytes))
    return entity_reply::fail(fail(errc::internal, "the reply is not a colony.v1.EntityReply"));
  return from_wire(w);
}

} // namespace colony::runtime
