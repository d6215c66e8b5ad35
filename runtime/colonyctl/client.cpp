#include "client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/ssl.h>

namespace colony::ctl {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

endpoint parse_url(const std::string& url) {
  endpoint ep;
  std::string rest;
  if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else if (url.starts_with("https://")) {
    ep.tls = true;
    rest = url.substr(8);
  } else {
    throw std::invalid_argument("'" + url + "' does not start with http:// or https://");
  }
  auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  if (slash != std::string::npos) {
    ep.prefix = rest.substr(slash);
    while (!ep.prefix.empty() && ep.prefix.back() == '/')
      ep.prefix.pop_back();
  }
  auto colon = authority.rfind(':');
  if (colon != std::string::npos && authority.find(']') == std::string::npos) {
    ep.host = authority.substr(0, colon);
    ep.port = authority.substr(colon + 1);
  } else {
    ep.host = authority;
    ep.port = ep.tls ? "443" : "80";
  }
  if (ep.host.empty())
    throw std::invalid_argument("'" + url + "' names no host");
  if (ep.port.empty() || ep.port.find_first_not_of("0123456789") != std::string::npos || ep.port.size() > 5 ||
      std::stoi(ep.port) < 1 || std::stoi(ep.port) > 65535)
    throw std::invalid_argument("'" + url + "' has no port from 1 to 65535");
  return ep;
}

std::string encode(const std::string& s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

namespace {

/// Runs one asynchronous step on `ioc` to its end (the stream's expiry bounds it).
template <class Start>
void step(net::io_context& ioc, const char* what, Start start) {
  beast::error_code result;
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  ioc.run();
  ioc.restart();
  if (result == beast::error::timeout)
    throw transport_error(std::string{what} + ": timed out");
  // need_buffer: a streamed body filled the piece given to it (not an error).
  if (result && result != net::ssl::error::stream_truncated && result != http::error::need_buffer)
    throw transport_error(std::string{what} + ": " + result.message());
}

template <class Stream>
reply exchange(net::io_context& ioc, Stream& stream, beast::tcp_stream& lowest, std::chrono::milliseconds timeout,
               http::request<http::string_body>& req, const chunk_sink* sink, std::chrono::milliseconds idle) {
  lowest.expires_after(timeout);
  step(ioc, "sending the request", [&](auto done) { http::async_write(stream, req, done); });
  beast::flat_buffer buf;
  http::response_parser<http::empty_body> head;
  head.body_limit(64 * 1024 * 1024);
  lowest.expires_after(timeout);
  step(ioc, "reading the answer", [&](auto done) { http::async_read_header(stream, buf, head, done); });
  reply r;
  r.status = static_cast<int>(head.get().result_int());
  r.content_type = std::string(head.get()[http::field::content_type]);
  r.retry_after = std::string(head.get()[http::field::retry_after]);
  if (sink != nullptr && r.status == 200) {
    http::response_parser<http::buffer_body> body{std::move(head)};
    char piece[8192];
    while (!body.is_done()) {
      body.get().body().data = piece;
      body.get().body().size = sizeof piece;
      lowest.expires_after(idle);
      step(ioc, "reading the stream", [&](auto done) { http::async_read_some(stream, buf, body, done); });
      auto got = sizeof piece - body.get().body().size;
      if (got > 0 && !(*sink)(std::string_view{piece, got}))
        break;
    }
    return r;
  }
  http::response_parser<http::string_body> whole{std::move(head)};
  lowest.expires_after(timeout);
  step(ioc, "reading the answer", [&](auto done) { http::async_read(stream, buf, whole, done); });
  r.body = std::move(whole.get().body());
  return r;
}

} // namespace

reply client::request(const std::string& method, const std::string& target, const std::string& body) const {
  return run(method, target, body, nullptr, timeout_);
}

reply client::stream(const std::string& target, const chunk_sink& sink, std::chrono::milliseconds idle) const {
  return run("GET", target, {}, &sink, idle);
}

reply client::run(const std::string& method, const std::string& target, const std::string& body, const chunk_sink* sink,
                  std::chrono::milliseconds idle) const {
  net::io_context ioc;
  tcp::resolver resolver{ioc};
  beast::error_code ec;
  auto addrs = resolver.resolve(ep_.host, ep_.port, ec);
  if (ec)
    throw transport_error("cannot resolve " + ep_.host + ": " + ec.message());
  http::request<http::string_body> req{http::string_to_verb(method), ep_.prefix + target, 11};
  req.set(http::field::host, ep_.host + ":" + ep_.port);
  req.set(http::field::user_agent, "colonyctl");
  req.set(http::field::accept, sink != nullptr ? "text/event-stream" : "application/json");
  if (!token_.empty())
    req.set(http::field::authorization, "Bearer " + token_);
  if (!body.empty() || method == "POST") {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  auto where = ep_.host + ":" + ep_.port;
  if (!ep_.tls) {
    beast::tcp_stream stream{ioc};
    stream.expires_after(timeout_);
    step(ioc, ("connecting to " + where).c_str(), [&](auto done) { stream.async_connect(addrs, done); });
    auto r = exchange(ioc, stream, stream, timeout_, req, sink, idle);
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    return r;
  }
  net::ssl::context ctx{net::ssl::context::tls_client};
  ctx.set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 | net::ssl::context::no_sslv3 |
                  net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1);
  if (cacert_.empty())
    ctx.set_default_verify_paths();
  else
    ctx.load_verify_file(cacert_, ec);
  if (ec)
    throw transport_error("cannot read --cacert " + cacert_ + ": " + ec.message());
  ctx.set_verify_mode(net::ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> stream{ioc, ctx};
  if (SSL_set_tlsext_host_name(stream.native_handle(), ep_.host.c_str()) != 1)
    throw transport_error("cannot set the TLS server name " + ep_.host);
  SSL_set1_host(stream.native_handle(), ep_.host.c_str());
  auto& lowest = beast::get_lowest_layer(stream);
  lowest.expires_after(timeout_);
  step(ioc, ("connecting to " + where).c_str(), [&](auto done) { lowest.async_connect(addrs, done); });
  lowest.expires_after(timeout_);
  step(ioc, "the TLS handshake", [&](auto done) { stream.async_handshake(net::ssl::stream_base::client, done); });
  return exchange(ioc, stream, lowest, timeout_, req, sink, idle);
}

} // namespace colony::ctl
