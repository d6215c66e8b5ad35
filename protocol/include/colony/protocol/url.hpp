// http(s) URLs as Colony accepts them for outgoing requests (webhook
// endpoints, JWKS): scheme, host, port and target, no user info, at most
// 2,048 characters. Pure parsing; whether the host may be called is the
// caller's rule (adapters/webhooks: check_webhook_target).
#pragma once

#include <optional>
#include <string>

namespace colony::protocol {

struct http_url {
  bool tls = false;
  std::string host;
  std::string port; // always set: 443/80 when the URL has none
  std::string target;
};

[[nodiscard]] std::optional<http_url> parse_http_url(const std::string& url);

} // namespace colony::protocol
