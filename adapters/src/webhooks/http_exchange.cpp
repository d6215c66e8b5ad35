#include "http_exchange.hpp"

#include <boost/asio.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <memory>

#include "colony/runtime/log.hpp"
#include "targets.hpp"

namespace colony::adapters {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

class session : public std::enable_shared_from_this<session> {
public:
  session(net::io_context& ioc, net::ssl::context& tls, exchange_request r, std::function<void(exchange_result)> done)
    : resolver_(net::make_strand(ioc)), r_(std::move(r)), done_(std::move(done)) {
    if (r_.url.tls)
      tls_ = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(resolver_.get_executor(), tls);
    else
      plain_ = std::make_unique<beast::tcp_stream>(resolver_.get_executor());
    bool default_port = r_.url.port == (r_.url.tls ? "443" : "80");
    req_.method_string(r_.method);
    req_.target(r_.url.target);
    req_.version(11);
    req_.set(bhttp::field::host, r_.url.host + (default_port ? "" : ":" + r_.url.port));
    req_.set(bhttp::field::user_agent, r_.user_agent);
    if (!r_.content_type.empty())
      req_.set(bhttp::field::content_type, r_.content_type);
    for (auto& [k, v] : r_.headers)
      req_.set(k, v);
    req_.body() = std::move(r_.body);
    if (!req_.body().empty() || r_.method == "POST" || r_.method == "PUT" || r_.method == "PATCH")
      req_.prepare_payload();
    res_.body_limit(r_.max_body);
    res_.header_limit(64 * 1024);
  }

  void start() {
    tcp().expires_after(r_.timeout);
    resolver_.async_resolve(
      r_.url.host, r_.url.port, [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type r) {
        if (ec)
          return self->fail("cannot resolve " + self->r_.url.host + ": " + ec.message(), "refused");
        // Every address is checked again here: a name can be pointed elsewhere after its registration.
        std::vector<tcp::endpoint> allowed;
        for (const auto& e : r) {
          auto why = self->r_.allow_private ? std::nullopt : refused_address(e.endpoint().address());
          if (!why)
            allowed.push_back(e.endpoint());
          else
            log::warn("outgoing request refused",
                      {{"id", self->r_.log_id}, {"host", self->r_.url.host}, {"reason", *why}});
        }
        if (allowed.empty())
          return self->fail("no allowed address", "refused");
        self->tcp().async_connect(allowed, [self](beast::error_code ec2, const tcp::endpoint&) {
          if (ec2)
            return self->fail("cannot connect: " + ec2.message(), ec2 == beast::error::timeout ? "timeout" : "refused");
          if (self->tls_)
            self->handshake();
          else
            self->write();
        });
      });
  }

private:
  beast::tcp_stream& tcp() { return tls_ ? beast::get_lowest_layer(*tls_) : *plain_; }

  void handshake() {
    // SNI, and the certificate must name the host.
    if (!SSL_set_tlsext_host_name(tls_->native_handle(), r_.url.host.c_str()))
      return fail("cannot set the TLS server name", "refused");
    tls_->set_verify_mode(net::ssl::verify_peer);
    tls_->set_verify_callback(net::ssl::host_name_verification(r_.url.host));
    tls_->async_handshake(net::ssl::stream_base::client, [self = shared_from_this()](beast::error_code ec) {
      if (ec)
        return self->fail("TLS handshake failed: " + ec.message(),
                          ec == beast::error::timeout ? "timeout" : "TLS handshake failed");
      self->write();
    });
  }

  template <class Stream>
  void exchange(Stream& s) {
    bhttp::async_write(s, req_, [self = shared_from_this(), &s](beast::error_code ec, std::size_t) {
      if (ec)
        return self->fail("cannot send: " + ec.message(), ec == beast::error::timeout ? "timeout" : "refused");
      bhttp::async_read(s, self->buffer_, self->res_, [self](beast::error_code ec2, std::size_t) {
        if (ec2 == bhttp::error::body_limit)
          return self->fail("the answer is larger than " + std::to_string(self->r_.max_body) + " bytes", "too large");
        if (ec2) // a reset, a close or an answer that is not HTTP: all "refused" to the tenant
          return self->fail("no answer: " + ec2.message(), ec2 == beast::error::timeout ? "timeout" : "refused");
        exchange_result out;
        auto& msg = self->res_.get();
        out.status = static_cast<int>(msg.result_int());
        for (const auto& f : msg) {
          std::string name{f.name_string()};
          for (auto& c : name)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          out.headers.emplace_back(std::move(name), std::string{f.value()});
        }
        out.body = std::move(msg.body());
        self->finish(std::move(out));
      });
    });
  }

  void write() {
    if (tls_)
      exchange(*tls_);
    else
      exchange(*plain_);
  }

  /// A failed exchange: the precise reason goes to the node's log; the
  /// caller sees only "refused", "timeout", "TLS handshake failed" or "too
  /// large", so that targets cannot be used to scan the node's network (no
  /// difference between refused, reset and non-HTTP).
  void fail(const std::string& reason, std::string shown) {
    log::info(r_.log_what, {{"id", r_.log_id}, {"host", r_.url.host}, {"reason", reason}});
    exchange_result out;
    out.error = std::move(shown);
    finish(std::move(out));
  }

  void finish(exchange_result out) {
    beast::error_code ignored;
    tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    if (auto done = std::exchange(done_, nullptr))
      done(std::move(out));
  }

  tcp::resolver resolver_;
  std::unique_ptr<beast::tcp_stream> plain_;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls_;
  beast::flat_buffer buffer_;
  bhttp::request<bhttp::string_body> req_;
  bhttp::response_parser<bhttp::string_body> res_;
  exchange_request r_;
  std::function<void(exchange_result)> done_;
};

} // namespace

void start_exchange(net::io_context& ioc, net::ssl::context& tls, exchange_request req,
                    std::function<void(exchange_result)> done) {
  std::make_shared<session>(ioc, tls, std::move(req), std::move(done))->start();
}

void load_trust(net::ssl::context& tls, const std::string& ca_file) {
  tls.set_default_verify_paths();
  if (!ca_file.empty()) {
    beast::error_code ec;
    tls.load_verify_file(ca_file, ec);
    if (ec)
      log::error("webhooks.ca-file cannot be read; only the system's CAs are trusted",
                 {{"file", ca_file}, {"error", ec.message()}});
  }
}

} // namespace colony::adapters
