#include "colony/actors/user/personal_data.hpp"

#include "colony/protocol/time.hpp"

namespace colony::actors {

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

v1::Event erased_event(const std::string& tenant_id, const std::string& user_id, const std::string& request_id,
                       const std::string& traceparent, std::int64_t now_us) {
  v1::Event ev;
  ev.set_id(protocol::new_uuid_v7());
  ev.set_type("user.erased");
  ev.set_tenant_id(tenant_id);
  ev.set_aggregate_kind("user");
  ev.set_aggregate_id(user_id);
  protocol::set_timestamp(*ev.mutable_occurred_at(), now_us);
  ev.set_request_id(request_id);
  ev.set_traceparent(traceparent);
  ev.mutable_user_deleted()->set_user_id(user_id);
  return ev;
}

} // namespace colony::actors
