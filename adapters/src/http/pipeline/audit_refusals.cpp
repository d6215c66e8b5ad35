#include "../core.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "colony/protocol/json.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/log.hpp"

namespace colony::adapters::http {

using namespace actors;
using access::decision;
using access::permission;
using access::principal;

/// Records the answers that leave no change behind but must be accounted
/// for: authentication failures, denials (403, and 404 for another
/// tenant's resource), and refused writes. Successful changes are recorded
/// with their commit.
///
/// An operator action's answer is recorded whatever it is, as that action:
/// success (with the answer, e.g. {"status":"draining"}), denied (the
/// switch is off) or failure (with the problem's detail).
void api_core::audit_answer(const call& c, const api_response& r) {
  auto detail = [&] {
    auto doc = nlohmann::json::parse(r.body, nullptr, false);
    return doc.is_object() && doc.contains("detail") && doc["detail"].is_string() ? doc["detail"].get<std::string>()
                                                                                  : std::string{};
  };
  if (!c.audited_action.empty()) {
    auto outcome = r.status < 400 ? "success" : r.status == 403 ? "denied" : "failure";
    audit->record(audit_of(c, {}, c.audited_action, c.audited_target, outcome, r.status,
                           r.status < 400 ? r.body.substr(0, 200) : detail()));
    return;
  }
  if (r.status < 400)
    return;
  bool write = c.req.method == "POST" || c.req.method == "PATCH" || c.req.method == "DELETE";
  auto path = c.req.target.substr(0, std::min<std::size_t>(c.req.target.find('?'), 200));
  if (r.status == 401)
    audit->record(audit_of(c, {}, "auth.failed", c.req.method + " " + path, "failure", 401, detail()));
  else if (c.hidden || (r.status == 403 && r.problem_type == "forbidden"))
    audit->record(audit_of(c, c.who.tenant_id, "access.denied", c.req.method + " " + path, "denied", r.status,
                           c.hidden ? "another tenant's resource" : detail()));
  else if (write && c.route != "unmatched")
    audit->record(audit_of(c, c.tenant_id.empty() ? c.who.tenant_id : c.tenant_id, "request.refused",
                           c.req.method + " " + path, "failure", r.status, detail()));
}

} // namespace colony::adapters::http
