#include "jwks_fetch.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <stdexcept>

#include "colony/protocol/url.hpp"

namespace colony::adapters::auth {
namespace {
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
} // namespace

std::string fetch_jwks(const std::string& url, const std::string& ca_file, std::chrono::seconds timeout) {
  auto u = protocol::parse_http_url(url);
  if (!u)
    throw std::runtime_error("not an http(s) URL with a host");
  net::io_context ioc;
  net::ssl::context tls{net::ssl::context::tls_client};
  tls.set_default_verify_paths();
  tls.set_options(net::ssl::context::no_sslv2 | net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                  net::ssl::context::no_tlsv1_1);
  if (!ca_file.empty())
    tls.load_verify_file(ca_file);
  tcp::resolver resolver{ioc};
  beast::ssl_stream<beast::tcp_stream> secure{ioc, tls};
  beast::tcp_stream plain{ioc};
  auto& lowest = u->tls ? beast::get_lowest_layer(secure) : plain;
  bhttp::request<bhttp::empty_body> req{bhttp::verb::get, u->target, 11};
  bool default_port = u->port == (u->tls ? "443" : "80");
  req.set(bhttp::field::host, u->host + (default_port ? "" : ":" + u->port));
  req.set(bhttp::field::user_agent, "Colony-JWKS/1");
  req.set(bhttp::field::accept, "application/json");
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(1024 * 1024);
  std::string error;
  bool done = false;

  auto read_answer = [&](auto& stream) {
    bhttp::async_write(stream, req, [&](beast::error_code ec, std::size_t) {
      if (ec) {
        error = "cannot send: " + ec.message();
        return;
      }
      bhttp::async_read(stream, buffer, parser, [&](beast::error_code ec2, std::size_t) {
        if (ec2)
          error = "no answer: " + ec2.message();
        else
          done = true;
      });
    });
  };
  lowest.expires_after(timeout);
  resolver.async_resolve(u->host, u->port, [&](beast::error_code ec, tcp::resolver::results_type r) {
    if (ec) {
      error = "cannot resolve " + u->host + ": " + ec.message();
      return;
    }
    lowest.async_connect(r, [&](beast::error_code ec2, const tcp::endpoint&) {
      if (ec2) {
        error = "cannot connect: " + ec2.message();
        return;
      }
      if (!u->tls) {
        read_answer(plain);
        return;
      }
      if (!SSL_set_tlsext_host_name(secure.native_handle(), u->host.c_str())) {
        error = "cannot set the TLS server name";
        return;
      }
      secure.set_verify_mode(net::ssl::verify_peer);
      secure.set_verify_callback(net::ssl::host_name_verification(u->host));
      secure.async_handshake(net::ssl::stream_base::client, [&](beast::error_code ec3) {
        if (ec3)
          error = "TLS handshake failed: " + ec3.message();
        else
          read_answer(secure);
      });
    });
  });
  ioc.run_for(timeout + std::chrono::seconds(1));
  if (!done)
    throw std::runtime_error(error.empty() ? "no answer within " + std::to_string(timeout.count()) + " s" : error);
  auto& res = parser.get();
  if (res.result_int() != 200)
    throw std::runtime_error("answered HTTP " + std::to_string(res.result_int()));
  return res.body();
}

} // namespace colony::adapters::auth
