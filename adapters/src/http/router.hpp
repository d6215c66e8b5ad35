// The route table. Route groups (routes/groups.hpp) register their routes
// here: (method, template, permission, handler); the API serves the table
// and api_routes() lists it for the OpenAPI check (tests/unit/openapi_test.cpp).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "colony/actors/access/access_model.hpp"

namespace colony::adapters::http {

struct api_core;
struct call;

/// A route's handler: the pipeline has authenticated the caller (unless the
/// route is open) and checked platform routes; the handler answers `c`.
using handler = void (*)(api_core&, std::shared_ptr<call>);

struct route {
  std::string method;
  std::string path; // the template, e.g. /v1/tenants/{tenantId}
  std::vector<std::string> segs;
  handler fn;
  std::optional<actors::access::permission> perm; // nullopt: open (no credentials)
  bool tail = false; // the last parameter takes the rest of the path (none, one or more segments)
};

class router {
public:
  void add(std::string method, std::string path, std::optional<actors::access::permission> perm, handler fn);
  /// A route whose last parameter takes the rest of the path, joined by '/'
  /// (a plugin's http hook: /v1/tenants/{tenantId}/x/{name}/{path}).
  void add_tail(std::string method, std::string path, actors::access::permission perm, handler fn);
  /// The route for `method` at the path of `segs` (GET serves HEAD) and its
  /// parameters moved into `params`; null if none. `methods` gets the
  /// methods of the routes whose template matches but whose method does not (405).
  [[nodiscard]] const route* match(std::string_view method, std::vector<std::string>& segs,
                                   std::vector<std::string>& methods) const;
  /// The methods of the routes whose template matches `path` (for 405's
  /// Allow and CORS preflights); empty if no route does.
  [[nodiscard]] std::vector<std::string> methods_at(std::string_view path) const;
  [[nodiscard]] const std::vector<route>& routes() const { return routes_; }

private:
  std::vector<route> routes_;
};

/// Is this segment of a template a parameter ("{tenantId}")?
[[nodiscard]] inline bool is_param(const std::string& t) { return t.size() > 2 && t.front() == '{' && t.back() == '}'; }

} // namespace colony::adapters::http
