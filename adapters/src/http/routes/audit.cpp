#include "groups.hpp"
#include "../core.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "colony/protocol/json.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/log.hpp"

#include <google/protobuf/util/time_util.h>

namespace colony::adapters::http {

using namespace actors;
using access::decision;
using access::permission;
using access::principal;

namespace {

bool audit_params(api_core& a, const std::shared_ptr<call>& c, audit_op& q) {
  for (const char* f : {"actor", "action", "target"})
    if (auto it = c->query.find(f); it != c->query.end()) {
      if (it->second.size() > 300) {
        a.invalid_param(c, f, "must be at most 300 characters");
        return false;
      }
      (std::string{f} == "actor" ? q.actor : std::string{f} == "action" ? q.action : q.target) = it->second;
    }
  for (const char* f : {"from", "to"})
    if (auto it = c->query.find(f); it != c->query.end()) {
      google::protobuf::Timestamp ts;
      if (!google::protobuf::util::TimeUtil::FromString(it->second, &ts)) {
        a.invalid_param(c, f, "must be an RFC 3339 time such as 2026-11-01T00:00:00Z");
        return false;
      }
      (std::string{f} == "from" ? q.from_us : q.to_us) = protocol::timestamp_us(ts);
    }
  if (!a.int_param(c, "limit", 1, 500, q.limit))
    return false;
  if (auto it = c->query.find("cursor"); it != c->query.end()) {
    auto pos = decode_audit_cursor(it->second);
    if (!pos) {
      a.invalid_param(c, "cursor", "is not a cursor returned by this list");
      return false;
    }
    q.before = *pos;
  }
  return true;
}

void run_audit(api_core& a, const std::shared_ptr<call>& c, audit_op q) {
  auto limit = q.limit;
  q.limit = limit + 1;
  a.ask_store_raw<audit_page>(
    c,
    [c, limit](audit_page& page) {
      if (page.status != store_status::ok) {
        c->respond(api::failure_response(actors::fail(errc::unavailable, "the store is unavailable; retry later"),
                                         c->req.request_id));
        return;
      }
      bool more = page.rows.size() > static_cast<std::size_t>(limit);
      if (more)
        page.rows.resize(static_cast<std::size_t>(limit));
      auto arr = nlohmann::json::array();
      for (const auto& rec : page.rows)
        arr.push_back({{"id", rec.id},
                       {"tenantId", rec.tenant_id},
                       {"at", protocol::format_rfc3339(rec.at_us)},
                       {"actor", rec.actor},
                       {"action", rec.action},
                       {"target", rec.target},
                       {"requestId", rec.request_id},
                       {"client", rec.client},
                       {"outcome", rec.outcome},
                       {"status", rec.status ? nlohmann::json(rec.status) : nlohmann::json(nullptr)},
                       {"detail", rec.detail}});
      nlohmann::json doc{{"data", arr}};
      doc["nextCursor"] =
        more ? nlohmann::json(encode_audit_cursor(page.rows.back().position)) : nlohmann::json(nullptr);
      c->respond(json(200, doc.dump(-1, ' ', false, replace_invalid)));
    },
    audit_atom::value, std::move(q));
}

void tenant_audit_log(api_core& a, std::shared_ptr<call> c) {
  audit_op q;
  if (!audit_params(a, c, q))
    return;
  a.with_existing_tenant(c, [&a, c, q](std::string tid) mutable {
    q.tenant_id = tid;
    run_audit(a, c, std::move(q));
  });
}

void platform_audit_log(api_core& a, std::shared_ptr<call> c) {
  audit_op q;
  if (!audit_params(a, c, q))
    return;
  if (auto it = c->query.find("tenantId"); it != c->query.end())
    q.tenant_id = it->second; // "" (platform records) is allowed
  else
    q.all_tenants = true;
  run_audit(a, c, std::move(q));
}

} // namespace

void add_audit_routes(router& r) {
  using p = permission;
  r.add("GET", "/v1/tenants/{tenantId}/audit-log", p::manage, tenant_audit_log);
  r.add("GET", "/v1/audit-log", p::platform, platform_audit_log);
}

} // namespace colony::adapters::http
