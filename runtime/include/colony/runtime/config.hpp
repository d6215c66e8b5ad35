// Node configuration: the values of every option the modules register
// (options.hpp), read from the config file (CAF's config format), then
// COLONY_* environment variables, then command-line flags, later sources
// winning. Invalid values stop the node with a message naming the option.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "colony/actors/tenant/tenant_model.hpp"

namespace colony::runtime {

/// The CPUs this process may run on (its affinity mask, which taskset and a
/// container's cpuset narrow), at least 1: thread counts that default to
/// "one per core" use it, as Go's GOMAXPROCS and the JVM do, so a node
/// pinned to one core runs one scheduler worker, not one per core of the
/// machine.
[[nodiscard]] int usable_cores();

struct node_config {
  std::string config_file; // empty: built-in defaults only
  std::string listen = "127.0.0.1:8080";
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 8080;
  std::string data_dir = "./var";
  std::string store = "sqlite:";
  std::string log_format = "text";
  std::string log_level = "info";
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(5)};
  std::chrono::milliseconds request_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds shutdown_timeout{std::chrono::seconds(10)};
  std::int64_t http_body_limit = 1024 * 1024;
  std::int64_t http_header_limit = 16 * 1024;
  std::int64_t http_request_line_limit = 8 * 1024;
  int http_header_count_limit = 100;
  std::chrono::milliseconds http_read_timeout{std::chrono::seconds(30)};
  std::chrono::milliseconds http_idle_timeout{std::chrono::seconds(60)};
  int http_threads = 0; // 0: one per usable core
  int http_max_connections = 10000;
  int http_max_in_flight = 4096;
  std::chrono::milliseconds http_idempotency_ttl{std::chrono::hours(24)};
  std::string tls_cert; // with tls_key: serve HTTPS only (TLS 1.2+)
  std::string tls_key;
  int store_read_connections = 2;
  int store_max_batch = 256;
  int scheduler_threads = 0; // 0: one per usable core
  int trial_days = 14;
  std::chrono::milliseconds timer_poll_interval{std::chrono::seconds(1)};
  actors::tenant_rules rules; // plans (from [colony.plans.*]) and default plan
  bool fault_injection = false;
  // Plugins (docs/plugins.md): the limits of one hook call, and the circuit breaker.
  int plugin_instructions = 10'000'000;
  std::chrono::milliseconds plugin_wall{50};
  std::int64_t plugin_memory = 16 << 20;
  std::int64_t plugin_output = 1 << 20;
  int plugin_host_calls = 100;
  int plugin_threads = 0;                          // the pool hook code runs on; 0: one per core
  int plugin_nice = 10;                            // its threads' nice value (below the actor system's workers)
  std::chrono::milliseconds plugin_inline_time{1}; // a plugin's steps run inline until one takes longer
  int plugin_fault_threshold = 5;
  std::chrono::milliseconds plugin_event_poll{200}; // how often on_event cursors with new events are looked for
  int plugin_event_attempts = 5;
  int plugin_event_batch = 100;
  std::int64_t plugin_kv_quota = 1 << 20;              // bytes of colony.kv per (tenant, plugin)
  std::chrono::milliseconds plugin_http_timeout{5000}; // the longest colony.http.request may wait
  std::int64_t plugin_http_max_body = 1 << 20;         // of its answer
  bool console_operator_actions = false;               // the console's operator actions (platform_operator), audited
  std::string clock_start;                             // debug.clock-start as given; empty: the system clock
  std::int64_t clock_start_us = 0;                     // ... in microseconds since the epoch
  std::string stripe_webhook_secret;                   // empty: the Stripe webhook route is off
  std::vector<std::string> http_cors_origins;          // browser origins allowed (CORS); empty: no CORS
  std::chrono::milliseconds payment_grace{std::chrono::hours(72)};
  bool billing_allow_tenant_plan_change = false; // with Stripe configured: may tenants change their plan?
  int webhook_max_attempts = 8;
  std::string webhook_ca_file;
  std::string secrets_key;                    // 64 hex digits; empty: the key file
  std::string secrets_key_file;               // empty: <data-dir>/secrets.key
  bool webhook_allow_private_targets = false; // deliver to loopback/private/link-local addresses (tests, labs)
  std::chrono::milliseconds webhook_retry_base{std::chrono::seconds(1)};
  std::chrono::milliseconds webhook_timeout{std::chrono::seconds(10)};
  std::string kafka_brokers; // empty: the relay and the command consumer are off
  std::string kafka_events_topic = "colony.events.v1";
  std::string kafka_value_format = "protobuf";
  std::string kafka_group_id = "colony";
  std::string kafka_commands_topic = "colony.commands.v1";
  std::string kafka_results_topic = "colony.command-results.v1";
  std::string kafka_dlq_topic = "colony.commands.dlq.v1";
  int kafka_command_attempts = 3;
  std::string auth_hs256_secret; // empty: HS256 tokens refused
  std::string auth_jwks;         // file or http(s) URL; empty: RS256/ES256 tokens refused
  std::string auth_issuer;
  std::string auth_audience;
  std::chrono::milliseconds auth_leeway{std::chrono::seconds(60)};
  std::chrono::milliseconds auth_jwks_refresh{std::chrono::minutes(5)};
  std::string auth_jwks_ca_file;
  std::string auth_tenant_claim = "tenant_id";
  std::string auth_roles_claim = "roles";
  std::string auth_user_claim = "sub";
  std::vector<std::string> auth_open_routes{"/livez", "/readyz", "/metrics", "/openapi.json"};
  std::chrono::milliseconds auth_api_key_cache_ttl{std::chrono::seconds(10)};
  int ratelimit_credential_percent = 50;
  std::chrono::milliseconds quota_flush_interval{std::chrono::seconds(2)};
  // Clustering (docs/clustering.md); off while cluster_listen is empty.
  std::string cluster_listen;    // host:port of the cluster port
  std::string cluster_advertise; // host:port peers dial; empty: cluster_listen
  std::string cluster_name = "colony";
  std::string node_name; // empty: the host name
  std::string cluster_secret;
  std::chrono::milliseconds cluster_heartbeat{std::chrono::seconds(1)};
  std::chrono::milliseconds cluster_connection_timeout{std::chrono::seconds(5)};
  std::chrono::milliseconds cluster_probe_interval{std::chrono::seconds(1)};
  std::chrono::milliseconds cluster_probe_timeout{std::chrono::seconds(1)};
  int cluster_missed_probes = 3;
  std::chrono::milliseconds cluster_vote_expiry{std::chrono::seconds(30)};
  std::chrono::milliseconds cluster_lease{std::chrono::seconds(10)};
  std::chrono::milliseconds cluster_renew_interval{std::chrono::seconds(2)};
  std::chrono::milliseconds cluster_join_timeout{std::chrono::seconds(60)};
  int cluster_handoff_max = 64;
  int cluster_peer_max_in_flight = 1024;
  std::chrono::milliseconds cluster_forward_timeout{std::chrono::seconds(5)};

  /// The store spec with any password masked, safe for logs.
  [[nodiscard]] std::string store_for_display() const;
};

/// What to do after parsing the command line.
struct config_result {
  enum class action { run, exit } what = action::run;
  int exit_code = 0;  // for exit: 0 after --help/--dump-config/--config-template, 2 on invalid input
  std::string output; // text for stdout (help, dump) or stderr (errors)
  node_config config;
};

class option_registry;

/// Parses file, environment (`envp`, may be null) and flags against the
/// options of `reg`.
[[nodiscard]] config_result load_config(int argc, const char* const* argv, const char* const* envp,
                                        const option_registry& reg);

/// Masks the password of a postgresql:// URL.
[[nodiscard]] std::string mask_dsn(const std::string& dsn);

} // namespace colony::runtime
