// colonyctl's HTTP client: one request per call to a node's API (Boost.Beast,
// synchronous; HTTPS through OpenSSL with the system's trust store or
// --cacert). No state between calls: the token is sent on each.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace colony::ctl {

struct endpoint {
  bool tls = false;
  std::string host;
  std::string port;
  std::string prefix; // a path the API sits under (a proxy), without the trailing slash
};

/// http[s]://host[:port][/prefix]; throws std::invalid_argument saying what is wrong.
[[nodiscard]] endpoint parse_url(const std::string& url);

struct reply {
  int status = 0;
  std::string content_type;
  std::string body;
  std::string retry_after;
};

/// The node could not be reached, or the exchange broke off.
struct transport_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Receives a streamed body piece by piece (as it arrives); false stops reading.
using chunk_sink = std::function<bool(std::string_view)>;

class client {
public:
  client(endpoint ep, std::string token, std::string cacert, std::chrono::milliseconds timeout)
    : ep_(std::move(ep)), token_(std::move(token)), cacert_(std::move(cacert)), timeout_(timeout) {}
  /// One request; throws transport_error.
  [[nodiscard]] reply request(const std::string& method, const std::string& target, const std::string& body = {}) const;
  /// GET a streamed answer (text/event-stream): a 200's body goes to `sink`
  /// as it arrives, until the node ends it or `sink` says stop; any other
  /// answer comes back whole, as from request(). Between two pieces the
  /// node may be silent for `idle` (it sends a comment every 15 s).
  [[nodiscard]] reply stream(const std::string& target, const chunk_sink& sink,
                             std::chrono::milliseconds idle = std::chrono::seconds(45)) const;
  [[nodiscard]] const endpoint& where() const { return ep_; }

private:
  reply run(const std::string& method, const std::string& target, const std::string& body, const chunk_sink* sink,
            std::chrono::milliseconds idle) const;
  endpoint ep_;
  std::string token_;
  std::string cacert_;
  std::chrono::milliseconds timeout_;
};

/// Percent-encodes a path segment or query value.
[[nodiscard]] std::string encode(const std::string& s);

} // namespace colony::ctl
