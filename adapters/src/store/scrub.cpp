// GDPR erasure of event payloads (shared by both stores).
#include "backend.hpp"
#include "colony/protocol/json.hpp"
#include "colony/v1/event.pb.h"

namespace colony::adapters::store {

std::string scrub_user_event(const std::string& payload) {
  v1::Event ev;
  if (!ev.ParseFromString(payload))
    return payload;
  if (ev.has_user_changed()) {
    auto* u = ev.mutable_user_changed()->mutable_state();
    u->clear_email();
    u->clear_name();
    u->clear_attributes();
  }
  return ev.SerializeAsString();
}

std::string event_json(const std::string& payload) {
  v1::Event ev;
  return ev.ParseFromString(payload) ? protocol::to_json(ev) : std::string{"{}"};
}

} // namespace colony::adapters::store
