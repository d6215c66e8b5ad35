#include "groups.hpp"
#include "../core.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "colony/protocol/json.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/log.hpp"
#include "colony/v1/event.pb.h"

#include <limits>

namespace colony::adapters::http {

using namespace actors;
using access::decision;
using access::permission;
using access::principal;

namespace {

/// Reads `after` and `limit` of an event feed; false if an answer was sent.
bool event_params(api_core& a, const std::shared_ptr<call>& c, event_query& q) {
  std::int64_t limit = 100;
  if (!a.int_param<std::int64_t>(c, "after", 0, std::numeric_limits<std::int64_t>::max(), q.after) ||
      !a.int_param<std::int64_t>(c, "limit", 1, 1000, limit))
    return false;
  q.limit = static_cast<int>(limit);
  return true;
}

void run_events(api_core& a, const std::shared_ptr<call>& c, event_query q) {
  a.ask_store_raw<event_page>(
    c,
    [c, q](event_page& page) {
      if (page.status != store_status::ok) {
        c->respond(api::failure_response(page.status == store_status::unavailable
                                           ? actors::fail(errc::unavailable, "the store is unavailable; retry later")
                                           : actors::fail(errc::internal, "the events could not be read"),
                                         c->req.request_id));
        return;
      }
      std::string body = "{\"data\":[";
      v1::Event ev;
      for (std::size_t i = 0; i < page.rows.size(); ++i) {
        const auto& row = page.rows[i];
        if (i > 0)
          body += ',';
        body += "{\"position\":" + std::to_string(row.position) + ",\"event\":";
        if (ev.ParseFromString(row.payload)) {
          body += protocol::to_json(ev);
        } else {
          log::error("unreadable event in the outbox", {{"position", row.position}});
          body += "null";
        }
        body += '}';
      }
      auto next = page.rows.empty() ? q.after : page.rows.back().position;
      body += "],\"nextAfter\":" + std::to_string(next) + "}";
      c->respond(json(200, std::move(body)));
    },
    events_atom::value, q);
}

void list_events(api_core& a, std::shared_ptr<call> c) {
  event_query q;
  if (event_params(a, c, q))
    run_events(a, c, std::move(q));
}

void list_tenant_events(api_core& a, std::shared_ptr<call> c) {
  event_query q;
  if (!event_params(a, c, q))
    return;
  a.with_tenant(c, [&a, c, q](std::string id) mutable {
    q.tenant_id = id;
    command cmd;
    cmd.what = op::get;
    a.call_entity(c, entity_key{entity_kind::tenant, id, id}, std::move(cmd),
                  [&a, c, q](entity_reply&) { run_events(a, c, q); });
  });
}

} // namespace

void add_event_routes(router& r) {
  using p = permission;
  r.add("GET", "/v1/events", p::platform, list_events);
  r.add("GET", "/v1/tenants/{tenantId}/events", p::tenant_inspect, list_tenant_events);
}

} // namespace colony::adapters::http
