// Boost.Beast HTTP/1.1 server: parses and bounds requests on its own Asio
// threads, hands them to the API, and writes the answer when the actor side
// calls back. Asio threads never wait on an actor.
//
// One io_context per thread (http.threads), each run by its own thread; a
// new connection goes to the next one in turn and stays there. Everything
// of a connection then runs on one thread, so it needs no strand, and the
// streams use the io_context's executor type rather than the type-erased
// any_io_executor. Measured against one io_context shared by the threads
// with a strand per connection (docs/performance.md): the strand's and the
// shared scheduler's mutexes and the executor type erasure were ~10% of the
// node's samples under the GET load.
#include <array>
#include <charconv>
#include <atomic>
#include <utility> // before Asio: Boost 1.74's awaitable.hpp needs std::exchange
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>
#include <thread>

#include "api.hpp"
#include "colony/runtime/log.hpp"

namespace colony::adapters {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

struct http_server::impl {
  caf::actor_system& sys;
  http_options opts;
  std::shared_ptr<runtime::metrics> metrics;
  http::api api;
  using io_executor = net::io_context::executor_type;
  std::vector<std::unique_ptr<net::io_context>> iocs; // one per thread; iocs[0] also accepts
  tcp::acceptor acceptor;
  std::size_t next_ioc = 0;               // round robin of new connections (touched only by the accept handler)
  std::unique_ptr<net::ssl::context> tls; // set: HTTPS only
  // Keeps run() going while requests wait on actors with no socket operation
  // pending: without it, once the acceptor closed at SIGTERM, the io threads
  // ran out of work and returned, and answers posted later were never
  // written (the drain then waited out the whole shutdown timeout).
  std::vector<net::executor_work_guard<io_executor>> keep_running;
  std::vector<std::thread> threads;
  std::atomic<int> in_flight{0};
  std::atomic<int> connections{0};
  std::atomic<int> streams{0}; // streamed answers running (not in flight: they end when closing)
  std::atomic<bool> closing{false};
  std::uint16_t bound_port = 0;

  impl(caf::actor_system& s, http_options o, api_context ctx)
    : sys(s), opts(o), metrics(ctx.metrics), api(s, o, std::move(ctx)), iocs(make_iocs(o.threads)),
      acceptor(*iocs.front()) {
    for (auto& ioc : iocs)
      keep_running.push_back(net::make_work_guard(*ioc));
  }

  static std::vector<std::unique_ptr<net::io_context>> make_iocs(int threads) {
    std::vector<std::unique_ptr<net::io_context>> v;
    for (int i = 0; i < std::max(1, threads); ++i)
      v.push_back(std::make_unique<net::io_context>(1)); // concurrency hint: run by one thread
    return v;
  }

  void accept();
};

namespace {

using io_socket = tcp::socket::rebind_executor<http_server::impl::io_executor>::other;
using plain_stream = beast::basic_stream<tcp, http_server::impl::io_executor>;
using tls_stream = beast::ssl_stream<plain_stream>;

/// One connection, plain or TLS (Stream is plain_stream or tls_stream).
template <class Stream>
class session : public std::enable_shared_from_this<session<Stream>> {
public:
  session(io_socket&& socket, http_server::impl& srv)
    : client_(peer_of(socket)), stream_(make_stream(std::move(socket), srv)), srv_(srv) {
    ++srv_.connections;
  }
  ~session() { --srv_.connections; }

  void start() {
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if constexpr (is_tls) {
        // The handshake counts against the read timeout: a client that
        // connects and says nothing is cut off like a slow request.
        self->lowest().expires_after(self->srv_.opts.read_timeout);
        self->stream_.async_handshake(net::ssl::stream_base::server, [self](beast::error_code ec) {
          if (ec) {
            log::debug("TLS handshake failed", {{"error", ec.message()}});
            beast::error_code ignored;
            self->lowest().socket().close(ignored);
            return;
          }
          self->read();
        });
      } else {
        self->read();
      }
    });
  }

private:
  static constexpr bool is_tls = std::is_same_v<Stream, tls_stream>;

  static Stream make_stream(io_socket&& socket, http_server::impl& srv) {
    if constexpr (is_tls)
      return Stream{std::move(socket), *srv.tls};
    else
      return Stream{std::move(socket)};
  }

  plain_stream& lowest() { return beast::get_lowest_layer(stream_); }

  static std::string peer_of(const io_socket& socket) {
    beast::error_code ec;
    auto peer = socket.remote_endpoint(ec);
    return ec ? std::string{} : peer.address().to_string();
  }

  void read() {
    parser_.emplace();
    parser_->body_limit(srv_.opts.body_limit);
    parser_->header_limit(static_cast<std::uint32_t>(srv_.opts.header_limit));
    lowest().expires_after(first_ ? srv_.opts.read_timeout : srv_.opts.idle_timeout);
    first_ = false;
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
        ec == beast::error::timeout || ec == net::error::operation_aborted) {
      close();
      return;
    }
    if (ec) {
      // The request could not be parsed or is too large: answer, then close.
      int status = 400;
      std::string_view type = "malformed-request", title = "Malformed request";
      std::string detail = "the request is not valid HTTP/1.1: " + ec.message();
      if (ec == bhttp::error::body_limit) {
        status = 413;
        type = "payload-too-large";
        title = "Payload too large";
        detail = "the body exceeds " + std::to_string(srv_.opts.body_limit) + " bytes";
      } else if (ec == bhttp::error::header_limit && request_line_too_long()) {
        reject_request_line();
        return;
      } else if (ec == bhttp::error::header_limit) {
        status = 431;
        type = "request-header-fields-too-large";
        title = "Request header fields too large";
        detail = "the request line and headers exceed " + std::to_string(srv_.opts.header_limit) + " bytes";
      }
      reject(status, type, title, detail);
      return;
    }
    lowest().expires_never();
    auto& req = parser_->get();
    request_id_ = http::pick_request_id(std::string{req["X-Request-Id"]});
    traceparent_ = http::pick_traceparent(std::string{req["traceparent"]});
    tracestate_ = http::pick_tracestate(std::string{req["traceparent"]}, traceparent_, std::string{req["tracestate"]});
    if (req.method_string().size() + req.target().size() + 10 > srv_.opts.request_line_limit) { // "M T HTTP/1.1"
      reject(414, "uri-too-long", "URI too long",
             "the request line exceeds " + std::to_string(srv_.opts.request_line_limit) + " bytes", true);
      return;
    }
    if (static_cast<std::size_t>(std::distance(req.begin(), req.end())) > srv_.opts.header_count_limit) {
      reject(431, "request-header-fields-too-large", "Request header fields too large",
             "the request has more than " + std::to_string(srv_.opts.header_count_limit) + " header fields", true);
      return;
    }
    http::api_request areq;
    areq.method = std::string{req.method_string()};
    areq.target = std::string{req.target()};
    areq.content_type = std::string{req[bhttp::field::content_type]};
    areq.if_match = std::string{req[bhttp::field::if_match]};
    areq.if_none_match = std::string{req[bhttp::field::if_none_match]};
    areq.idempotency_key = std::string{req["Idempotency-Key"]};
    areq.request_id = request_id_;
    areq.traceparent = traceparent_;
    areq.fault = std::string{req["X-Colony-Fault"]};
    areq.stripe_signature = std::string{req["Stripe-Signature"]};
    areq.origin = std::string{req[bhttp::field::origin]};
    areq.cors_method = std::string{req[bhttp::field::access_control_request_method]};
    areq.cors_headers = std::string{req[bhttp::field::access_control_request_headers]};
    areq.authorization = std::string{req[bhttp::field::authorization]};
    areq.client_addr = client_;
    areq.cookie = std::string{req[bhttp::field::cookie]};
    areq.host = std::string{req[bhttp::field::host]};
    areq.accept_encoding = std::string{req[bhttp::field::accept_encoding]};
    areq.last_event_id = std::string{req["Last-Event-ID"]};
    areq.body = std::move(req.body());
    keep_alive_ = req.keep_alive() && !srv_.closing.load();
    version_ = req.version();
    head_ = req.method() == bhttp::verb::head;
    method_ = areq.method;
    started_ = std::chrono::steady_clock::now();
    // Overload protection, whoever the tenant: beyond http.max-in-flight
    // requests waiting for their answers (each is queued work somewhere in
    // the actors or the store), new ones are turned away at once instead of
    // growing queues and latency for everyone.
    if (srv_.in_flight.fetch_add(1) >= srv_.opts.max_in_flight) {
      auto r = http::api::problem(503, "overloaded", "Overloaded",
                                  "the node has " + std::to_string(srv_.opts.max_in_flight) +
                                    " requests in progress; retry after Retry-After",
                                  request_id_);
      r.headers.emplace_back("Retry-After", "1");
      r.route = "overloaded"; // counted in colony_http_requests_total{route="overloaded"}
      write(std::move(r));
      return;
    }
    srv_.api.handle(std::move(areq), [self = this->shared_from_this()](http::api_response r) {
      net::post(self->stream_.get_executor(), [self, r = std::move(r)]() mutable { self->write(std::move(r)); });
    });
  }

  /// Answers a request that is not handed to the API, then closes (lingering).
  /// `parsed`: the head was read, so its X-Request-Id and traceparent (set
  /// already) are answered; otherwise new ones are made.
  void reject(int status, std::string_view type, std::string_view title, const std::string& detail,
              bool parsed = false) {
    if (!parsed) {
      request_id_ = http::pick_request_id({});
      traceparent_ = http::pick_traceparent({});
      tracestate_.clear();
    }
    auto r = http::api::problem(status, type, title, detail, request_id_);
    r.route = "unparsed";
    keep_alive_ = false;
    linger_ = true;
    method_ = "UNKNOWN";
    ++srv_.in_flight;
    started_ = std::chrono::steady_clock::now();
    write(std::move(r));
  }

  void reject_request_line() {
    reject(414, "uri-too-long", "URI too long",
           "the request line exceeds " + std::to_string(srv_.opts.request_line_limit) + " bytes");
  }

  /// After a header-limit error: is it the request line alone that is too
  /// long (414), or a header field (431)? What is left in the buffer may
  /// start with the request line or, once the parser took that, with a
  /// field: a field has its colon before any space, a request line a space
  /// after its method.
  bool request_line_too_long() const {
    auto data = buffer_.cdata();
    std::string_view seen{static_cast<const char*>(data.data()), data.size()};
    auto first = seen.find_first_of(" :");
    if (first == std::string_view::npos || seen[first] == ':')
      return false;
    auto end = seen.find("\r\n");
    return (end == std::string_view::npos ? seen.size() : end) > srv_.opts.request_line_limit;
  }

  /// Writes the answer with one writev: the status line and header fields
  /// are serialized here into a string the connection reuses, the body goes
  /// as it is. Beast's serializer walked a buffers_cat_view of every field and
  /// the body through several layers of buffer adaptors on each write, about
  /// 15% of the node's samples under the GET load (docs/performance.md).
  /// Fields keep Beast's `set` semantics: a later field replaces an earlier
  /// one of the same name.
  void write(http::api_response r) {
    status_ = r.status;
    route_ = std::move(r.route);
    stream_src_ = std::move(r.stream);
    bool keep = keep_alive_ && !srv_.closing.load() && !stream_src_;
    // No body, and no Content-Length, for 1xx, 204 and 304 (RFC 9110 8.6).
    bool bodyless = r.status / 100 == 1 || r.status == 204 || r.status == 304;
    fields_.clear();
    auto set = [this](std::string_view name, std::string_view value) {
      for (auto& f : fields_)
        if (beast::iequals(beast::string_view(f.first.data(), f.first.size()),
                           beast::string_view(name.data(), name.size()))) {
          f.second = value;
          return;
        }
      fields_.emplace_back(name, value);
    };
    set("Server", "colony");
    if (!r.content_type.empty())
      set("Content-Type", r.content_type);
    set("X-Request-Id", request_id_);
    if (!srv_.opts.node_name.empty())
      set("X-Colony-Node", srv_.opts.node_name);
    if (!traceparent_.empty())
      set("traceparent", traceparent_);
    if (!tracestate_.empty())
      set("tracestate", tracestate_);
    set("X-Content-Type-Options", "nosniff");
    set("Referrer-Policy", "no-referrer");
    set("X-Frame-Options", "DENY");
    set("Cache-Control", "no-store");
    if constexpr (is_tls)
      set("Strict-Transport-Security", "max-age=31536000");
    for (auto& [k, v] : r.headers)
      set(k, v);
    // HTTP/1.1 keeps the connection unless told; HTTP/1.0 closes it unless told.
    if (version_ >= 11 && !keep)
      set("Connection", "close");
    else if (version_ < 11 && keep)
      set("Connection", "keep-alive");
    std::array<char, 24> length{};
    if (!bodyless && !stream_src_) {
      auto [end, ec] = std::to_chars(length.data(), length.data() + length.size(), r.body.size());
      set("Content-Length", std::string_view(length.data(), static_cast<std::size_t>(end - length.data())));
    }

    out_.clear();
    out_ += version_ >= 11 ? "HTTP/1.1 " : "HTTP/1.0 ";
    out_ += std::to_string(r.status);
    out_ += ' ';
    auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(r.status));
    out_.append(reason.data(), reason.size());
    out_ += "\r\n";
    for (auto& [name, value] : fields_) {
      out_ += name;
      out_ += ": ";
      for (char ch : value) // a field value never ends the header early
        out_ += ch == '\r' || ch == '\n' || ch == '\0' ? ' ' : ch;
      out_ += "\r\n";
    }
    out_ += "\r\n";
    if (!bodyless && !head_)
      body_ = std::move(r.body); // not copied: the head and the body go out in one writev
    std::array<net::const_buffer, 2> answer{net::buffer(out_), net::buffer(body_)};
    net::async_write(stream_, answer, [self = this->shared_from_this(), keep](beast::error_code ec, std::size_t) {
      self->on_write(ec, keep);
    });
  }

  void on_write(beast::error_code ec, bool keep) {
    std::string{}.swap(body_); // an idle connection keeps no answer
    auto streaming = std::move(stream_src_);
    auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    --srv_.in_flight;
    if (srv_.metrics)
      srv_.metrics->http_request(method_, route_, status_, secs);
    if (log::enabled(log::level::info)) // the fields cost formatting and copies even when dropped
      log::info("request",
                {{"request_id", request_id_},
                 {"method", method_},
                 {"route", route_},
                 {"status", status_},
                 {"duration_ms", secs * 1000.0}});
    if (!ec && linger_) {
      linger();
      return;
    }
    if (!ec && streaming && !head_) {
      stream_src_ = std::move(streaming);
      ++srv_.streams;
      watch();
      pump();
      return;
    }
    if (ec || !keep) {
      close();
      return;
    }
    read();
  }

  // -- a streamed answer (Server-Sent Events) ------------------------------------
  // The head is out and the request counted; from here the connection only
  // sends what the source has, every pump_period, until the source ends, the
  // client goes (watch() sees the read side close) or the node shuts down.
  static constexpr auto pump_period = std::chrono::milliseconds(250);

  void pump() {
    if (client_gone_ || srv_.closing.load()) {
      end_stream();
      return;
    }
    auto next = stream_src_->pull();
    if (!next) {
      end_stream();
      return;
    }
    if (next->empty()) {
      timer_.expires_after(pump_period);
      timer_.async_wait([self = this->shared_from_this()](beast::error_code) { self->pump(); });
      return;
    }
    body_ = std::move(*next);
    lowest().expires_after(srv_.opts.read_timeout); // a client that stops reading is cut off
    net::async_write(stream_, net::buffer(body_), [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      self->lowest().expires_never();
      if (ec) {
        self->client_gone_ = true;
        self->end_stream();
        return;
      }
      self->timer_.expires_after(pump_period);
      self->timer_.async_wait([self](beast::error_code) { self->pump(); });
    });
  }

  /// A streamed answer's client sends nothing more; a read that ends means it went.
  void watch() {
    stream_.async_read_some(net::buffer(discard_),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                              if (ec) {
                                self->client_gone_ = true;
                                self->timer_.cancel();
                                return;
                              }
                              self->watch();
                            });
  }

  void end_stream() {
    if (!stream_src_)
      return;
    stream_src_.reset();
    --srv_.streams;
    timer_.cancel();
    // No close_notify: watch()'s read is still pending, and a TLS shutdown
    // would read concurrently with it. The stream ends with the connection.
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().close();
  }

  // After answering a request whose body was not read (413, 431, 400), the
  // client may still be sending it. Closing at once would make the kernel
  // reset the connection and the client could lose the answer, so, like
  // nginx's lingering close, stop sending and discard what still arrives for
  // a bounded time and amount before closing.
  void linger() {
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    lowest().expires_after(linger_time);
    drain();
  }

  void drain() {
    stream_.async_read_some(net::buffer(discard_),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ > linger_bytes) {
                                beast::error_code ignored;
                                self->lowest().socket().close(ignored);
                                return;
                              }
                              self->drain();
                            });
  }

  void close() {
    if constexpr (is_tls) {
      // close_notify, bounded in time, then the socket.
      lowest().expires_after(std::chrono::seconds(2));
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) { self->lowest().close(); });
    } else {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      stream_.close();
    }
  }

  std::string client_; // before stream_: read from the socket before it moves there
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  http_server::impl& srv_;
  static constexpr auto linger_time = std::chrono::seconds(5);
  static constexpr std::size_t linger_bytes = 64 * 1024 * 1024;
  bool first_ = true;
  bool linger_ = false;
  std::size_t drained_ = 0;
  std::array<char, 16 * 1024> discard_{};
  bool keep_alive_ = true;
  bool head_ = false;
  unsigned version_ = 11;
  int status_ = 0;
  std::string method_;
  std::string route_;
  std::string request_id_;
  std::string traceparent_;
  std::string tracestate_;
  std::chrono::steady_clock::time_point started_;
  std::vector<std::pair<std::string_view, std::string_view>> fields_; // of the answer being built
  std::string out_;                                                   // the head of the answer being written
  std::string body_;                                                  // and its body
  std::shared_ptr<http::stream_source> stream_src_;                   // a streamed answer's source
  bool client_gone_ = false;
  net::basic_waitable_timer<std::chrono::steady_clock, net::wait_traits<std::chrono::steady_clock>,
                            http_server::impl::io_executor>
    timer_{stream_.get_executor()};
};

} // namespace

void http_server::impl::accept() {
  auto& peer = *iocs[next_ioc++ % iocs.size()];
  acceptor.async_accept(peer, [this](beast::error_code ec, io_socket socket) {
    if (ec == net::error::operation_aborted || !acceptor.is_open())
      return;
    if (!ec) {
      if (connections.load() >= opts.max_connections) {
        beast::error_code ignored;
        socket.close(ignored);
        log::warn("connection refused: http.max-connections reached", {{"limit", opts.max_connections}});
      } else {
        if (tls)
          std::make_shared<session<tls_stream>>(std::move(socket), *this)->start();
        else
          std::make_shared<session<plain_stream>>(std::move(socket), *this)->start();
      }
    }
    accept();
  });
}

http_server::http_server(caf::actor_system& sys, http_options opts, api_context ctx)
  : impl_(std::make_unique<impl>(sys, std::move(opts), std::move(ctx))) {}

http_server::~http_server() { stop(); }

void http_server::start() {
  auto& d = *impl_;
  beast::error_code ec;
  if (!d.opts.tls_cert.empty() || !d.opts.tls_key.empty()) {
    if (d.opts.tls_cert.empty() || d.opts.tls_key.empty())
      throw std::runtime_error("TLS needs both --tls-cert and --tls-key");
    d.tls = std::make_unique<net::ssl::context>(net::ssl::context::tls_server);
    d.tls->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                       net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1 |
                       net::ssl::context::single_dh_use);
    SSL_CTX_set_min_proto_version(d.tls->native_handle(), TLS1_2_VERSION);
    d.tls->use_certificate_chain_file(d.opts.tls_cert, ec);
    if (ec)
      throw std::runtime_error("tls-cert '" + d.opts.tls_cert + "': " + ec.message());
    d.tls->use_private_key_file(d.opts.tls_key, net::ssl::context::pem, ec);
    if (ec)
      throw std::runtime_error("tls-key '" + d.opts.tls_key + "': " + ec.message());
    if (SSL_CTX_check_private_key(d.tls->native_handle()) != 1)
      throw std::runtime_error("tls-key '" + d.opts.tls_key + "' does not belong to tls-cert '" + d.opts.tls_cert +
                               "'");
  }
  auto addr = net::ip::make_address(d.opts.host, ec);
  if (ec)
    throw std::runtime_error("listen: '" + d.opts.host + "' is not an IP address");
  tcp::endpoint ep{addr, d.opts.port};
  d.acceptor.open(ep.protocol(), ec);
  if (!ec)
    d.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec)
    d.acceptor.bind(ep, ec);
  if (!ec)
    d.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error("cannot listen on " + d.opts.host + ":" + std::to_string(d.opts.port) + ": " +
                             ec.message());
  d.bound_port = d.acceptor.local_endpoint().port();
  d.api.set_bound_port(d.bound_port);
  d.accept();
  for (auto& ioc : d.iocs)
    d.threads.emplace_back([&ioc = *ioc] { ioc.run(); });
}

std::uint16_t http_server::port() const { return impl_->bound_port; }

void http_server::stop_accepting() {
  auto& d = *impl_;
  d.closing = true;
  d.api.set_draining();
  net::post(*d.iocs.front(), [&d] {
    beast::error_code ignored;
    d.acceptor.close(ignored);
  });
}

bool http_server::drain(std::chrono::steady_clock::time_point deadline) {
  while (impl_->in_flight.load() > 0) {
    if (std::chrono::steady_clock::now() >= deadline) {
      log::warn("requests still in flight at the shutdown deadline",
                {{"in_flight", impl_->in_flight.load()}, {"connections", impl_->connections.load()}});
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

void http_server::stop() {
  if (!impl_)
    return;
  impl_->api.flush(std::chrono::seconds(5));
  impl_->keep_running.clear();
  for (auto& ioc : impl_->iocs)
    ioc->stop();
  for (auto& t : impl_->threads)
    if (t.joinable())
      t.join();
  impl_->threads.clear();
  // A call still held on the actor side (a request past the shutdown
  // deadline) owns its session; released after this server is gone, the
  // session would touch freed memory (its stream's timer service, the
  // connection count). The bridges hold every such call: end them now.
  impl_->api.stop(std::chrono::seconds(5));
}

} // namespace colony::adapters
