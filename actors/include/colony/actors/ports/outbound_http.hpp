// colony.http.request's way out (docs/plugins.md, "Host API"): one outgoing
// HTTP exchange, answered by an adapter (the webhooks adapter's client, with
// the SSRF rules of webhook deliveries). The plugin actor checks the
// manifest's allow-list before it asks.
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/typed_actor.hpp>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace colony::actors {

using http_fetch_atom = caf::atom_constant<caf::atom("httpfetch")>;

struct outbound_request {
  std::string method = "GET";
  std::string url; // http or https, checked by the caller
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds timeout{5000};
  std::string label; // names the caller in the node's log ("<tenant>/<plugin>")
};

struct outbound_response {
  int status = 0;    // 0: no answer
  std::string error; // no answer: refused | timeout | TLS handshake failed | too large
  std::vector<std::pair<std::string, std::string>> headers; // names in lower case
  std::string body;
};

using outbound_http = caf::typed_actor<caf::replies_to<http_fetch_atom, outbound_request>::with<outbound_response>>;

/// What the plugins module hands the entities: the client, and how far a plugin may reach with it.
struct outbound_http_service {
  outbound_http client;
  std::chrono::milliseconds max_timeout{10'000};
  std::size_t max_body = 1 << 20;
};

} // namespace colony::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::outbound_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(colony::actors::outbound_response)
