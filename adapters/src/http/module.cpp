// The HTTP module: the API's options, and the server's start (after every
// other module) and drain (first at shutdown).
#include "colony/adapters/auth.hpp"
#include "colony/adapters/http.hpp"
#include "colony/adapters/secrets.hpp"

namespace colony::adapters {
namespace {

using runtime::node_config;
namespace opt = runtime::opt;

class http_module_impl final : public runtime::module {
public:
  std::string_view name() const override { return "http"; }
  std::string_view title() const override { return "the HTTP server"; }

  void options(runtime::option_registry& r) override {
    const std::string m = "http";
    r.add(m,
          opt::string("listen", "address:port of the HTTP API (port 0 picks a free port; the log says which)",
                      &node_config::listen, [](node_config& c, const std::string& v) -> std::optional<std::string> {
                        auto colon = v.rfind(':');
                        if (colon == std::string::npos || colon == 0)
                          return "'" + v + "' is not host:port";
                        auto port = opt::parse_int(v.substr(colon + 1));
                        if (!port || *port < 0 || *port > 65535)
                          return "'" + v + "' has no valid port (0-65535)";
                        c.listen_host = v.substr(0, colon);
                        if (c.listen_host.size() > 2 && c.listen_host.front() == '[')
                          c.listen_host = c.listen_host.substr(1, c.listen_host.size() - 2);
                        c.listen_port = static_cast<std::uint16_t>(*port);
                        return std::nullopt;
                      }));
    r.add(m,
          opt::size("http.body-limit", "largest request body (413 beyond); bytes, or with KiB/MiB", 1024,
                    1024LL * 1024 * 1024, &node_config::http_body_limit));
    r.add(m,
          opt::size("http.header-limit", "largest request line plus headers (431 beyond); bytes, or with KiB", 1024,
                    1024 * 1024, &node_config::http_header_limit));
    r.add(m,
          opt::size("http.request-line-limit", "longest request line (method, target, version) (414 beyond)", 64,
                    1024 * 1024, &node_config::http_request_line_limit));
    r.add(m,
          opt::integer("http.header-count-limit", "most header fields in one request (431 beyond)", 1, 10'000,
                       &node_config::http_header_count_limit));
    r.add(m,
          opt::duration("http.read-timeout", "time allowed to receive one request", std::chrono::milliseconds(100),
                        std::chrono::minutes(10), &node_config::http_read_timeout));
    r.add(m,
          opt::duration("http.idle-timeout", "keep-alive connections idle longer than this are closed",
                        std::chrono::milliseconds(100), std::chrono::hours(1), &node_config::http_idle_timeout));
    r.add(m,
          opt::integer("http.threads", "threads that run the HTTP server (0: one per usable core)", 0, 256,
                       &node_config::http_threads));
    r.add(m,
          opt::integer("http.max-connections", "open connections beyond this are refused", 1, 1'000'000,
                       &node_config::http_max_connections));
    r.add(m,
          opt::integer("http.max-in-flight",
                       "requests in progress (waiting for actors or the store) beyond which new ones get 503 "
                       "overloaded",
                       1, 1'000'000, &node_config::http_max_in_flight));
    r.add(m,
          opt::duration("http.idempotency-ttl",
                        "how long the answer to a POST with an Idempotency-Key is kept for replays",
                        std::chrono::minutes(1), std::chrono::hours(24 * 30), &node_config::http_idempotency_ttl));
    r.add(m,
          opt::list("http.cors-origins",
                    "origins allowed to call the API from a browser (CORS), comma-separated, e.g. "
                    "https://app.example.com; * allows any; empty: no CORS headers",
                    &node_config::http_cors_origins, [](const std::string& o) -> std::optional<std::string> {
                      bool scheme = o.starts_with("http://") || o.starts_with("https://");
                      auto rest = scheme ? o.substr(o.find("://") + 3) : std::string{};
                      if (o != "*" && (!scheme || rest.empty() || rest.find('/') != std::string::npos))
                        return "'" + o + "' is not an origin (scheme://host[:port], no path) or *";
                      return std::nullopt;
                    }));
    r.add(m,
          opt::string("tls-cert",
                      "PEM certificate chain; with tls-key the API is served over HTTPS only (TLS 1.2+, HSTS)",
                      &node_config::tls_cert));
    r.add(
      m,
      opt::string("tls-key", "PEM private key of tls-cert (keep it readable by the node only)", &node_config::tls_key));
    r.add(m,
          opt::boolean("console.operator-actions",
                       "let platform_operator credentials drain and undrain nodes and passivate actors from the "
                       "console and /v1/admin (audited); off: the console is read-only",
                       &node_config::console_operator_actions));
    r.add(m,
          opt::integer("ratelimit.credential-percent",
                       "one credential's token bucket, as a share of its tenant's plan rate and burst (the "
                       "tenant's own bucket is the plan's requests-per-second and burst)",
                       1, 100, &node_config::ratelimit_credential_percent));
    r.add(m,
          opt::duration("quota.flush-interval",
                        "how often the API calls counted at the edge are added to the store (apiCallsPerMonth)",
                        std::chrono::milliseconds(50), std::chrono::minutes(10), &node_config::quota_flush_interval));
  }

  void describe(const node_config& cfg, std::vector<log::field>& out) const override {
    out.emplace_back("listen", cfg.listen);
  }

  void start(runtime::node_context& node) override {
    const auto& cfg = node.cfg;
    http_options o;
    o.host = cfg.listen_host;
    o.port = cfg.listen_port;
    o.body_limit = static_cast<std::size_t>(cfg.http_body_limit);
    o.header_limit = static_cast<std::size_t>(cfg.http_header_limit);
    o.request_line_limit = static_cast<std::size_t>(cfg.http_request_line_limit);
    o.header_count_limit = static_cast<std::size_t>(cfg.http_header_count_limit);
    o.read_timeout = cfg.http_read_timeout;
    o.idle_timeout = cfg.http_idle_timeout;
    o.request_timeout = cfg.request_timeout;
    o.threads = cfg.http_threads > 0 ? cfg.http_threads : runtime::usable_cores();
    o.max_connections = cfg.http_max_connections;
    o.max_in_flight = cfg.http_max_in_flight;
    o.tls_cert = cfg.tls_cert;
    o.tls_key = cfg.tls_key;
    o.fault_injection = cfg.fault_injection;
    o.operator_actions = cfg.console_operator_actions;
    o.node_name = runtime::cluster::node_name_of(cfg.node_name);
    o.stripe_webhook_secret = cfg.stripe_webhook_secret;
    o.allow_tenant_plan_change = cfg.billing_allow_tenant_plan_change;
    o.allow_private_webhook_targets = cfg.webhook_allow_private_targets;
    o.idempotency_ttl = cfg.http_idempotency_ttl;
    o.cors_origins = cfg.http_cors_origins;

    api_context ctx;
    ctx.entities = node.entities.router;
    ctx.store = node.store;
    ctx.metrics = node.metrics;
    ctx.rules = cfg.rules;
    ctx.version = node.version;
    ctx.readiness = node.readiness;
    ctx.jwt = node.find<const jwt_verifier>();
    ctx.open_paths = cfg.auth_open_routes;
    ctx.api_key_cache_ttl = cfg.auth_api_key_cache_ttl;
    ctx.credential_rate_percent = cfg.ratelimit_credential_percent;
    ctx.metering_interval = cfg.quota_flush_interval;
    ctx.secrets = node.find<const secret_box>();
    ctx.plugins = node.find<const actors::plugin_engine>();
    ctx.cluster = node.find<runtime::cluster::cluster_service>();
    ctx.local = node.find<const runtime::local_entities>();
    ctx.chores = node.chores;
    ctx.store_kind = cfg.store.starts_with("postgres") ? "postgresql" : "sqlite";
    ctx.kafka = !cfg.kafka_brokers.empty();
    server_ = std::make_unique<http_server>(node.sys, o, std::move(ctx));
    try {
      server_->start();
    } catch (const std::exception& e) {
      std::string what = e.what();
      bool bad_option = what.starts_with("tls-") || what.starts_with("TLS");
      server_.reset();
      throw runtime::start_error(bad_option ? "invalid value for " + what : "cannot start the HTTP server: " + what,
                                 bad_option ? 2 : 1);
    }
    log::info("listening",
              {{"address", cfg.listen_host + ":" + std::to_string(server_->port())},
               {"scheme", cfg.tls_cert.empty() ? "http" : "https"},
               {"port", static_cast<int>(server_->port())}});
  }

  std::chrono::milliseconds stop_budget(const node_config& cfg) const override { return cfg.shutdown_timeout; }

  void stop(runtime::node_context&, std::chrono::steady_clock::time_point deadline) override {
    if (!server_)
      return;
    server_->stop_accepting();
    if (!server_->drain(deadline))
      log::warn("shutdown timeout reached with requests still in flight"); // the clients see the connection close
    server_->stop();
    server_.reset();
  }

private:
  std::unique_ptr<http_server> server_;
};

} // namespace

std::unique_ptr<runtime::module> http_module() { return std::make_unique<http_module_impl>(); }

} // namespace colony::adapters
