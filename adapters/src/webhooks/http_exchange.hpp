// One outgoing HTTP exchange with a deadline, over TLS for https (the
// certificate and the host name verified), every resolved address checked
// against the SSRF rules (targets.hpp) unless private targets are allowed.
// Shared by the webhook notifier (its POSTs) and colony.http.request of the
// plugins (plugin_http.cpp). Private to the webhooks adapter.
#pragma once

#include <utility> // before Asio: Boost 1.74's awaitable.hpp needs std::exchange
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "colony/adapters/webhooks.hpp"

namespace colony::adapters {

struct exchange_request {
  std::string method = "POST";
  parsed_url url;
  std::vector<std::pair<std::string, std::string>> headers; // set after the defaults (Host, User-Agent)
  std::string body;
  std::string content_type = "application/json"; // empty: none
  std::string user_agent = "Colony-Webhooks/1";
  std::chrono::milliseconds timeout{10'000}; // resolve, connect, send and the whole answer
  bool allow_private = false;
  std::size_t max_body = 1 << 20; // of the answer; a longer one is an error ("too large")
  std::string log_id;             // names the exchange in log lines (a delivery id, a plugin)
  const char* log_what = "webhook attempt failed";
};

struct exchange_result {
  int status = 0;    // HTTP status; 0 when no answer
  std::string error; // what the caller may show: refused, timeout, TLS handshake failed, too large ("" on an answer)
  std::vector<std::pair<std::string, std::string>> headers; // of the answer, names in lower case
  std::string body;
};

/// Starts the exchange on `ioc` (call it there: net::post); `done` runs once, on `ioc`'s thread.
void start_exchange(boost::asio::io_context& ioc, boost::asio::ssl::context& tls, exchange_request req,
                    std::function<void(exchange_result)> done);

/// The TLS client context of outgoing requests: the system's CAs and `ca_file` (PEM) if set.
void load_trust(boost::asio::ssl::context& tls, const std::string& ca_file);

} // namespace colony::adapters
