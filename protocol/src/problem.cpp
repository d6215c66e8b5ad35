#include "colony/protocol/problem.hpp"

#include <nlohmann/json.hpp>

namespace colony::protocol {

namespace {
// Details may quote client text that is not UTF-8: such bytes become U+FFFD.
constexpr auto replace_invalid = nlohmann::json::error_handler_t::replace;
} // namespace

problem_kind kind_of(errc code) {
  switch (code) {
    case errc::invalid: return {400, "validation-error", "Validation failed"};
    case errc::malformed: return {400, "malformed-request", "Malformed request"};
    case errc::not_found: return {404, "not-found", "Not found"};
    case errc::conflict: return {409, "conflict", "Conflict"};
    case errc::illegal_transition: return {409, "illegal-transition", "Illegal state transition"};
    case errc::plan_below_usage: return {409, "plan-below-usage", "Plan limits below current usage"};
    case errc::precondition_failed: return {412, "precondition-failed", "Precondition failed"};
    case errc::limit_exceeded: return {403, "limit-exceeded", "Plan limit exceeded"};
    case errc::tenant_suspended: return {403, "tenant-suspended", "Tenant suspended"};
    case errc::tenant_cancelled: return {403, "tenant-cancelled", "Tenant cancelled"};
    case errc::unavailable: return {503, "unavailable", "Service unavailable"};
    case errc::forbidden: return {403, "forbidden", "Forbidden"};
    case errc::moved: return {503, "unavailable", "Service unavailable"};
    case errc::plugin_rejected: return {422, "plugin-rejected", "Rejected by a plugin"};
    case errc::plugin_failed: return {503, "plugin-failed", "A plugin failed"};
    case errc::internal: break;
  }
  return {500, "internal-error", "Internal error"};
}

problem problem_of(int status, std::string_view type, std::string_view title, std::string_view detail,
                   std::string_view request_id) {
  nlohmann::json doc{{"type", std::string{problem_base} + std::string{type}},
                     {"title", title},
                     {"status", status},
                     {"detail", valid_utf8(detail)},
                     {"requestId", request_id}};
  return problem{status, doc.dump(-1, ' ', false, replace_invalid), status == 503};
}

problem problem_of(const failure& f, std::string_view request_id) {
  auto k = kind_of(f.code);
  std::string detail = k.status == 500
    ? "the request failed unexpectedly; quote request id " + std::string{request_id} + " when reporting it"
    : f.detail;
  auto p = problem_of(k.status, k.type, k.title, detail, request_id);
  if (!f.errors.empty() || !f.strings.empty() || !f.numbers.empty()) {
    auto doc = nlohmann::json::parse(p.body);
    if (!f.errors.empty()) {
      auto arr = nlohmann::json::array();
      for (const auto& e : f.errors)
        arr.push_back({{"field", e.field}, {"message", e.message}});
      doc["errors"] = std::move(arr);
    }
    for (const auto& [k2, v] : f.strings)
      doc[k2] = v;
    for (const auto& [k2, v] : f.numbers)
      doc[k2] = v;
    p.body = doc.dump(-1, ' ', false, replace_invalid);
  }
  return p;
}

} // namespace colony::protocol
