#include "cors.hpp"

#include <algorithm>

#include "colony/protocol/json.hpp"

namespace colony::adapters::http {

bool origin_allowed(const std::vector<std::string>& allowed, const std::string& origin) {
  return std::any_of(allowed.begin(), allowed.end(), [&](const std::string& a) { return a == "*" || a == origin; });
}

std::optional<api_response> cors_preflight(const api_request& req, const router& routes,
                                           const std::vector<std::string>& allowed) {
  if (req.origin.empty() || req.method != "OPTIONS" || req.cors_method.empty())
    return std::nullopt;
  if (!origin_allowed(allowed, req.origin))
    return api::problem(403, "cors-origin-not-allowed", "Origin not allowed",
                        "the origin '" + req.origin.substr(0, 200) + "' may not call this API from a browser",
                        req.request_id);
  // The methods of the routes at this path: none is a 404 (a preflight
  // for a path the API does not serve gets no permission).
  auto path = std::string_view{req.target}.substr(0, req.target.find('?'));
  auto methods = routes.methods_at(path);
  if (methods.empty())
    return api::problem(404, "not-found", "Not found", "no route for " + protocol::valid_utf8(path.substr(0, 200)),
                        req.request_id);
  std::string allow;
  for (const auto& m : methods)
    allow += (allow.empty() ? "" : ", ") + m + (m == "GET" ? ", HEAD" : "");
  api_response r{204, "", "", {}, "cors-preflight", {}, {}};
  r.headers = {{"Access-Control-Allow-Origin", req.origin},
               {"Vary", "Origin"},
               {"Access-Control-Allow-Methods", allow},
               {"Access-Control-Allow-Headers",
                "Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key, X-Request-Id, traceparent, "
                "tracestate"},
               {"Access-Control-Max-Age", "600"}};
  return r;
}

void add_cors_headers(api_response& r, const std::string& origin) {
  r.headers.emplace_back("Access-Control-Allow-Origin", origin);
  r.headers.emplace_back("Vary", "Origin");
  r.headers.emplace_back("Access-Control-Expose-Headers",
                         "ETag, Location, Retry-After, RateLimit, RateLimit-Policy, X-Request-Id, traceparent, "
                         "tracestate, Idempotency-Replayed");
}

} // namespace colony::adapters::http
