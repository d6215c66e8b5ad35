// CORS by allow-list (http.cors-origins): an allowed Origin gets it echoed
// back (never "*", so credentials can be sent), a preflight is answered
// before any other step, and an Origin not on the list gets no CORS headers
// (the browser then refuses the answer).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "../api.hpp"
#include "../router.hpp"

namespace colony::adapters::http {

[[nodiscard]] bool origin_allowed(const std::vector<std::string>& allowed, const std::string& origin);
/// The answer to a CORS preflight (OPTIONS with Access-Control-Request-Method); nullopt if `req` is none.
[[nodiscard]] std::optional<api_response> cors_preflight(const api_request& req, const router& routes,
                                                         const std::vector<std::string>& allowed);
/// The CORS headers of an answer to the allowed `origin`.
void add_cors_headers(api_response& r, const std::string& origin);

} // namespace colony::adapters::http
