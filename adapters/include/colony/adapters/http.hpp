// The public HTTP entry point: a Boost.Beast server on its own Asio threads in
// front of the API (routing, validation, problem+json), which talks to the
// entity registry and the store through actors and never blocks on them.
//
// Lifecycle: start() binds and serves; stop_accepting() closes the listener
// (readiness turns 503); drain(deadline) waits for in-flight requests; stop()
// closes every connection and joins the threads. All may be called from the
// main thread only.
#pragma once

#include "colony/actors/plugin/plugin_engine.hpp"

#include <caf/actor.hpp>
#include <caf/fwd.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "colony/actors/entities.hpp"
#include "colony/adapters/auth.hpp"
#include "colony/actors/ports/store_port.hpp"
#include "colony/adapters/secrets.hpp"
#include "colony/actors/tenant/tenant_model.hpp"
#include "colony/runtime/introspection.hpp"
#include "colony/runtime/metrics.hpp"
#include "colony/runtime/module.hpp"

namespace colony::adapters {

struct http_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  std::size_t body_limit = 1024 * 1024;
  std::size_t header_limit = 16 * 1024;
  std::size_t request_line_limit = 8 * 1024; // 414 beyond
  std::size_t header_count_limit = 100;      // 431 beyond
  std::chrono::milliseconds read_timeout{30'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds request_timeout{10'000};
  int threads = 2;
  int max_connections = 10'000;
  int max_in_flight = 4096; // requests waiting for their answer; 503 overloaded beyond
  std::string tls_cert;     // PEM certificate chain; with tls_key: HTTPS only (TLS 1.2+)
  std::string tls_key;      // PEM private key
  bool fault_injection = false;
  bool operator_actions = false;              // console.operator-actions: drain, undrain, passivate from /v1/admin
  std::string node_name;                      // X-Colony-Node on every answer
  std::string stripe_webhook_secret;          // empty: the Stripe webhook route answers 503
  bool allow_tenant_plan_change = false;      // with Stripe configured: tenant owners may change their plan
  bool allow_private_webhook_targets = false; // webhook URLs may point at loopback, private, link-local hosts
  std::vector<std::string> cors_origins;      // browser origins allowed (CORS); "*" any; empty: none
  std::chrono::seconds stripe_tolerance{300}; // accepted age of a Stripe-Signature timestamp
  std::chrono::milliseconds idempotency_ttl{24 * 3600 * 1000}; // how long an Idempotency-Key's answer is kept
};

/// What the API needs from the rest of the node.
struct api_context {
  std::shared_ptr<actors::entity_router> entities; // the registry's directory
  actors::store_port store;
  std::shared_ptr<runtime::metrics> metrics;
  actors::tenant_rules rules;
  std::string version;
  std::shared_ptr<const runtime::readiness_board> readiness; // the modules' lines of /readyz?verbose; may be null
  std::shared_ptr<const jwt_verifier> jwt;                   // null: no JWTs accepted (API keys only)
  /// Paths answered without credentials (the Stripe webhook is always open: it has its own signature).
  std::vector<std::string> open_paths{"/livez", "/readyz", "/metrics", "/openapi.json"};
  std::chrono::milliseconds api_key_cache_ttl{10'000}; // how long a looked-up key is trusted without the store
  int credential_rate_percent = 50; // one credential's bucket: this share of its tenant's rate and burst
  std::chrono::milliseconds metering_interval{2'000}; // metered API calls are written this often
  std::shared_ptr<const secret_box> secrets;          // seals webhook secrets at rest; null: stored as they are (tests)
  std::shared_ptr<runtime::cluster::cluster_service> cluster; // null: one node
  std::shared_ptr<const runtime::local_entities> local;       // this node's directory (GET /v1/admin/*); may be null
  std::shared_ptr<runtime::singleton> chores; // whose shards' webhook backlog this node reports; null: all (one node)
  std::string store_kind = "sqlite";          // sqlite | postgresql (GET /v1/admin/stores)
  bool kafka = false;                         // --kafka-brokers set: the relay and the command consumer run
  std::shared_ptr<const actors::plugin_engine> plugins; // compiles plugin sources at publication; null: none published
};

/// One route of the API, for documentation checks.
struct route_info {
  std::string method;
  std::string path; // template, e.g. /v1/tenants/{tenantId}
};

/// Every route the router serves.
[[nodiscard]] std::vector<route_info> api_routes();

/// The OpenAPI 3.1 document served at /openapi.json.
[[nodiscard]] const std::string& openapi_document();

class http_server {
public:
  http_server(caf::actor_system& sys, http_options opts, api_context ctx);
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// Binds and starts serving. Throws std::runtime_error naming the address on failure.
  void start();
  /// The bound port (useful with port 0).
  [[nodiscard]] std::uint16_t port() const;
  void stop_accepting();
  /// Waits until no request is in flight or the deadline passes; true if drained.
  bool drain(std::chrono::steady_clock::time_point deadline);
  void stop();

  struct impl; // defined in server.cpp

private:
  std::unique_ptr<impl> impl_;
};

/// The HTTP module (listen, http.*, tls-*, ratelimit.*, quota.*): serves the
/// API once every other module has started, drains on shutdown.
[[nodiscard]] std::unique_ptr<runtime::module> http_module();

} // namespace colony::adapters
