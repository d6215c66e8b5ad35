#include "colony/actors/messages.hpp"

#include <caf/all.hpp>

#include "colony/actors/entities.hpp"
#include "colony/actors/kinds.hpp"

namespace colony::actors {

const char* to_string(entity_kind k) noexcept {
  const auto* spec = builtin_kinds().find(k);
  return spec ? spec->name.c_str() : "unknown";
}

std::string op_name(op what) {
  switch (what) {
    case op::get: return "get";
    case op::create: return "create";
    case op::patch: return "patch";
    case op::remove: return "remove";
    case op::activate: return "activate";
    case op::suspend: return "suspend";
    case op::cancel: return "cancel";
    case op::usage: return "usage";
    case op::create_user: return "create_user";
    case op::patch_user: return "patch_user";
    case op::remove_user: return "remove_user";
    case op::billing: return "billing";
    case op::track_usage: return "track_usage";
    case op::expire_trial: return "expire_trial";
    case op::enable_plugin: return "enable_plugin";
    case op::disable_plugin: return "disable_plugin";
    case op::plugin_call: return "plugin_call";
    case op::suspend_plugin: return "suspend_plugin";
    case op::plugin_events: return "plugin_events";
  }
  return "op_" + std::to_string(static_cast<int>(what));
}

std::string entity_key::str() const {
  std::string s{to_string(kind)};
  s += '/';
  s += tenant_id;
  s += '/';
  s += id;
  return s;
}

failure failure_from(const caf::error& err) {
  if (err == caf::sec::request_timeout) {
    auto f = fail(errc::unavailable, "the entity did not answer in time; retry later");
    f.outcome_unknown = true;
    return f;
  }
  if (err == caf::sec::request_receiver_down)
    return fail(errc::unavailable, "the entity was restarting; retry");
  return fail(errc::internal, "the entity failed while handling the request");
}

} // namespace colony::actors
