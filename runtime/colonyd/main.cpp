// colonyd: one Colony node. Reads the configuration, starts the actor system
// (with CAF's I/O middleman, for the cluster to come), the store adapter, the
// entity registry and the HTTP server, then waits for SIGTERM/SIGINT and shuts
// down gracefully: stop accepting, finish in-flight requests, stop the actors
// (every commit was answered before its reply), exit 0.
#include <caf/all.hpp>
#include <caf/io/middleman.hpp>
#include <atomic>
#include <csignal>
#include <thread>
#include <filesystem>
#include <iostream>
#include <pthread.h>
#include <sys/stat.h>
#ifdef COLONY_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#include "colony/adapters/auth.hpp"
#include "colony/adapters/http.hpp"
#include "colony/adapters/kafka.hpp"
#include "colony/adapters/prometheus_metrics.hpp"
#include "colony/adapters/store.hpp"
#include "colony/adapters/webhooks.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/config.hpp"
#include "colony/runtime/entity_registry.hpp"
#include "colony/runtime/log.hpp"
#include "colony/runtime/timer_service.hpp"

#ifndef COLONY_VERSION
#define COLONY_VERSION "0.0.0"
#endif

using namespace colony;

namespace {

/// The malloc this binary runs on (jemalloc unless built with sanitizers).
std::string allocator() {
#ifdef COLONY_JEMALLOC
  const char* version = nullptr;
  std::size_t len = sizeof(version);
  if (mallctl("version", static_cast<void*>(&version), &len, nullptr, 0) == 0 && version != nullptr)
    return std::string{"jemalloc "} + version;
  return "jemalloc";
#else
  return "libc malloc";
#endif
}

log::level level_of(const std::string& s) {
  if (s == "trace")
    return log::level::trace;
  if (s == "debug")
    return log::level::debug;
  if (s == "warn")
    return log::level::warn;
  if (s == "error")
    return log::level::error;
  return log::level::info;
}

/// After shutdown-timeout (the drain of HTTP requests), the rest of the
/// shutdown (webhooks, Kafka, entities, store) has this long before the
/// watchdog ends the process (docs/configuration.md).
constexpr std::chrono::seconds shutdown_grace{10};

/// What the shutdown is doing, for the watchdog's last words.
std::atomic<const char*> shutdown_stage{"running"};

/// Once SIGTERM has come, the process ends by `deadline` whatever its threads
/// are doing: a thread that waits for a second SIGTERM/SIGINT or the
/// deadline, then logs what was still running and exits 70 (EX_SOFTWARE)
/// without running destructors that could wait for the stuck threads.
void start_shutdown_watchdog(sigset_t signals, std::chrono::milliseconds budget) {
  std::thread{[signals, budget] {
    auto s = std::chrono::duration_cast<std::chrono::seconds>(budget);
    timespec ts{static_cast<time_t>(s.count()),
                static_cast<long>(std::chrono::duration_cast<std::chrono::nanoseconds>(budget - s).count())};
    siginfo_t info{};
    int sig = sigtimedwait(&signals, &info, &ts);
    log::error(
      sig > 0 ? "second signal during shutdown: exiting now" : "shutdown did not finish in time: exiting now",
      {{"stage", std::string{shutdown_stage.load()}}, {"budget_ms", static_cast<std::int64_t>(budget.count())}});
    log::flush();
    std::_Exit(70);
  }}.detach();
}

/// Sends stop_atom and waits until the actor is gone, at most `limit`.
void stop_and_wait(caf::actor_system& sys, const caf::actor& who, std::chrono::seconds limit, const char* what) {
  shutdown_stage = what;
  caf::scoped_actor waiter{sys};
  waiter->monitor(who);
  waiter->send(who, actors::stop_atom::value);
  waiter->receive([](caf::down_msg&) {},
                  caf::after(limit) >> [what] { log::warn(std::string{what} + " did not stop in time"); });
}

/// The writer migrates on connect: requests before that would fail on
/// missing tables, so the node waits (at most ~5 s) for the store to say it
/// is ready before it serves. A store that stays down is reported by
/// /readyz meanwhile, and requests get 503.
void await_store(caf::actor_system& sys, const actors::store_port& store) {
  caf::scoped_actor self{sys};
  for (int attempt = 0; attempt < 100; ++attempt) {
    bool ready = false;
    self->request(store, std::chrono::seconds(5), actors::health_atom::value)
      .receive([&](actors::store_health& h) { ready = h.ready; }, [](caf::error&) {});
    if (ready)
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  log::warn("the store is not ready yet; serving anyway (readyz says why)");
}

/// First start without any credential configured: mint a platform admin API
/// key and leave it in <data-dir>/admin.key (0600), so that the operator can
/// make the first tenant. Logs the path, never the key.
void bootstrap_admin_key(caf::actor_system& sys, const actors::store_port& store, const runtime::node_config& cfg) {
  caf::scoped_actor self{sys};
  actors::api_key_op count;
  count.what = actors::api_key_op::kind::count_platform;
  count.now_us = protocol::now_us();
  std::optional<actors::api_key_result> found;
  for (int attempt = 0; attempt < 50 && !found; ++attempt) {
    self->request(store, std::chrono::seconds(5), actors::api_key_atom::value, count)
      .receive(
        [&](actors::api_key_result& r) {
          if (r.status == actors::store_status::ok)
            found = r;
        },
        [](caf::error&) {});
    if (!found)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!found) {
    log::warn("could not check for a platform admin API key (the store does not answer); none was created");
    return;
  }
  if (found->count > 0)
    return;
  auto path = (std::filesystem::path{cfg.data_dir} / "admin.key").string();
  auto minted = adapters::mint_api_key({}, {"platform_admin"}, "bootstrap admin", "bootstrap", protocol::now_us(), 0);
  actors::api_key_op create;
  create.what = actors::api_key_op::kind::create;
  create.key = minted.row;
  bool stored = false;
  self->request(store, std::chrono::seconds(10), actors::api_key_atom::value, create)
    .receive([&](actors::api_key_result& r) { stored = r.status == actors::store_status::ok; }, [](caf::error&) {});
  if (!stored) {
    log::error("could not store the bootstrap admin API key");
    return;
  }
  adapters::write_secret_file(path, minted.key);
  log::warn("no credentials were configured: created a platform admin API key; send it as "
            "'Authorization: Bearer <key>' and keep the file secret",
            {{"path", path}, {"key_id", minted.row.id}});
}

} // namespace

int main(int argc, char** argv, char** envp) {
  auto res = runtime::load_config(argc, argv, envp);
  if (res.what == runtime::config_result::action::exit) {
    (res.exit_code == 0 ? std::cout : std::cerr) << res.output;
    return res.exit_code;
  }
  const auto& cfg = res.config;
  log::init(cfg.log_format == "json" ? log::format::json : log::format::text, level_of(cfg.log_level));

  adapters::store_options sopts;
  sopts.spec = cfg.store;
  sopts.data_dir = cfg.data_dir;
  sopts.read_connections = cfg.store_read_connections;
  sopts.max_batch = cfg.store_max_batch;
  sopts.load_timeout = cfg.request_timeout;
  log::info("colonyd starting",
            {{"version", COLONY_VERSION},
             {"allocator", allocator()},
             {"store", adapters::describe_store(sopts)},
             {"listen", cfg.listen},
             {"data_dir", cfg.data_dir},
             {"config", cfg.config_file.empty() ? std::string{"(none: built-in defaults)"} : cfg.config_file}});

  if (cfg.clock_start_us != 0) {
    protocol::set_clock_offset_us(cfg.clock_start_us - protocol::now_us());
    log::warn("the clock is shifted for tests (debug.clock-start)",
              {{"now", protocol::format_rfc3339(protocol::now_us())}});
  }

  // Signals are taken by sigwait below; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Everything the node writes (the SQLite files, admin.key, the secrets
  // key) is for its own user only.
  ::umask(0077);
  try {
    if (std::filesystem::create_directories(cfg.data_dir))
      std::filesystem::permissions(cfg.data_dir, std::filesystem::perms::owner_all);
    auto perms = std::filesystem::status(cfg.data_dir).permissions();
    if ((perms & (std::filesystem::perms::group_all | std::filesystem::perms::others_all)) !=
        std::filesystem::perms::none)
      log::warn("the data directory is open to other users; it holds personal data and secrets (chmod 700 it)",
                {{"data_dir", cfg.data_dir}});
  } catch (const std::exception& e) {
    log::error("cannot create the data directory", {{"data_dir", cfg.data_dir}, {"error", e.what()}});
    return 1;
  }

  // The key that seals secrets at rest (docs/security.md).
  std::shared_ptr<const adapters::secret_box> secrets;
  try {
    if (!cfg.secrets_key.empty()) {
      secrets = std::make_shared<const adapters::secret_box>(*adapters::secret_box::from_text(cfg.secrets_key));
    } else {
      auto path = cfg.secrets_key_file.empty() ? (std::filesystem::path{cfg.data_dir} / "secrets.key").string()
                                               : cfg.secrets_key_file;
      secrets = std::make_shared<const adapters::secret_box>(adapters::secret_box::from_file(path));
    }
  } catch (const std::exception& e) {
    std::cerr << "colonyd: invalid value for secrets-key-file: " << e.what() << "\n";
    return 2;
  }

  caf::actor_system_config caf_cfg;
  caf_cfg.load<caf::io::middleman>();
  // CAF's own default is max(cores, 4): on a 2-core machine that is twice
  // as many workers as cores, and the extra context switches cost ~15% of
  // GET throughput (perf: finish_task_switch on top). One per core instead.
  caf_cfg.set("scheduler.max-threads",
              cfg.scheduler_threads > 0 ? cfg.scheduler_threads
                                        : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  caf::actor_system sys{caf_cfg};

  auto metrics = adapters::make_prometheus_metrics();
  sopts.metrics = metrics;
  auto store = adapters::spawn_store(sys, sopts);

  actors::entity_env env;
  env.store = store;
  env.rules = cfg.rules;
  env.idle_timeout = cfg.idle_timeout;
  env.store_timeout = cfg.request_timeout;
  env.fault_injection = cfg.fault_injection;
  auto registry = runtime::spawn_entity_registry(sys, env, metrics);
  // One node owns every node-wide chore (runtime/singleton.hpp); the cluster replaces this seam.
  auto chores = runtime::single_node_singleton();
  runtime::timer_options topts;
  topts.owner = chores;
  topts.poll_interval = cfg.timer_poll_interval;
  auto timers = runtime::spawn_timer_service(sys, store, registry.actor, topts);
  if (cfg.fault_injection)
    log::warn("fault injection is enabled (debug.fault-injection): never run like this in production");

  adapters::webhook_options wopts;
  wopts.owner = chores;
  wopts.max_attempts = cfg.webhook_max_attempts;
  wopts.retry_base = cfg.webhook_retry_base;
  wopts.timeout = cfg.webhook_timeout;
  wopts.ca_file = cfg.webhook_ca_file;
  wopts.allow_private_targets = cfg.webhook_allow_private_targets;
  wopts.secrets = secrets;
  auto notifier = adapters::spawn_webhook_notifier(sys, store, wopts);

  std::shared_ptr<adapters::relay_monitor> relay_monitor;
  caf::actor relay;
  caf::actor commands;
  if (cfg.kafka_brokers.empty()) {
    log::info("event relay off: no --kafka-brokers; events stay readable at GET /v1/events");
  } else {
    adapters::relay_options ropts;
    ropts.owner = chores;
    ropts.brokers = cfg.kafka_brokers;
    ropts.topic = cfg.kafka_events_topic;
    ropts.json_values = cfg.kafka_value_format == "json";
    ropts.metrics = metrics;
    relay_monitor = std::make_shared<adapters::relay_monitor>();
    relay = adapters::spawn_outbox_relay(sys, store, ropts, relay_monitor);
    log::info(
      "event relay on",
      {{"brokers", cfg.kafka_brokers}, {"topic", cfg.kafka_events_topic}, {"value_format", cfg.kafka_value_format}});
    adapters::command_consumer_options copts;
    copts.brokers = cfg.kafka_brokers;
    copts.group_id = cfg.kafka_group_id;
    copts.commands_topic = cfg.kafka_commands_topic;
    copts.results_topic = cfg.kafka_results_topic;
    copts.dlq_topic = cfg.kafka_dlq_topic;
    copts.attempts = cfg.kafka_command_attempts;
    copts.request_timeout = cfg.request_timeout;
    commands = adapters::spawn_command_consumer(sys, registry.actor, store, copts);
    log::info("command consumer on",
              {{"topic", cfg.kafka_commands_topic},
               {"group", cfg.kafka_group_id},
               {"results", cfg.kafka_results_topic},
               {"dlq", cfg.kafka_dlq_topic}});
  }

  adapters::jwt_options jopts;
  jopts.hs256_secret = cfg.auth_hs256_secret;
  jopts.jwks = cfg.auth_jwks;
  jopts.issuer = cfg.auth_issuer;
  jopts.audience = cfg.auth_audience;
  jopts.leeway = std::chrono::duration_cast<std::chrono::seconds>(cfg.auth_leeway);
  jopts.jwks_refresh = std::chrono::duration_cast<std::chrono::seconds>(cfg.auth_jwks_refresh);
  jopts.ca_file = cfg.auth_jwks_ca_file;
  jopts.tenant_claim = cfg.auth_tenant_claim;
  jopts.roles_claim = cfg.auth_roles_claim;
  jopts.user_claim = cfg.auth_user_claim;
  await_store(sys, store);
  std::shared_ptr<adapters::jwt_verifier> jwt;
  if (jopts.enabled()) {
    try {
      jwt = std::make_shared<adapters::jwt_verifier>(jopts);
    } catch (const std::exception& e) {
      std::cerr << "colonyd: invalid value for " << e.what() << "\n";
      log::error("cannot load the token keys", {{"error", e.what()}});
      log::flush();
      std::_Exit(2); // actors are running: nothing to clean up that matters
    }
    log::info("bearer tokens accepted",
              {{"hs256", jopts.hs256_secret.empty() ? "off" : "on"},
               {"jwks", jopts.jwks.empty() ? std::string{"off"} : jopts.jwks},
               {"jwks_keys", static_cast<int>(jwt->key_count())},
               {"issuer", jopts.issuer.empty() ? std::string{"(not checked)"} : jopts.issuer},
               {"audience", jopts.audience.empty() ? std::string{"(not checked)"} : jopts.audience}});
  } else {
    try {
      bootstrap_admin_key(sys, store, cfg);
    } catch (const std::exception& e) {
      log::error("cannot write the bootstrap admin API key", {{"error", e.what()}});
      log::flush();
      std::_Exit(1);
    }
  }

  adapters::http_options hopts;
  hopts.host = cfg.listen_host;
  hopts.port = cfg.listen_port;
  hopts.body_limit = static_cast<std::size_t>(cfg.http_body_limit);
  hopts.header_limit = static_cast<std::size_t>(cfg.http_header_limit);
  hopts.request_line_limit = static_cast<std::size_t>(cfg.http_request_line_limit);
  hopts.header_count_limit = static_cast<std::size_t>(cfg.http_header_count_limit);
  hopts.read_timeout = cfg.http_read_timeout;
  hopts.idle_timeout = cfg.http_idle_timeout;
  hopts.request_timeout = cfg.request_timeout;
  hopts.threads = cfg.http_threads;
  hopts.max_connections = cfg.http_max_connections;
  hopts.max_in_flight = cfg.http_max_in_flight;
  hopts.tls_cert = cfg.tls_cert;
  hopts.tls_key = cfg.tls_key;
  hopts.fault_injection = cfg.fault_injection;
  hopts.stripe_webhook_secret = cfg.stripe_webhook_secret;
  hopts.allow_tenant_plan_change = cfg.billing_allow_tenant_plan_change;
  hopts.allow_private_webhook_targets = cfg.webhook_allow_private_targets;
  hopts.idempotency_ttl = cfg.http_idempotency_ttl;
  hopts.cors_origins = cfg.http_cors_origins;

  int exit_code = 0;
  {
    adapters::api_context actx;
    actx.entities = registry.router;
    actx.store = store;
    actx.metrics = metrics;
    actx.rules = cfg.rules;
    actx.version = COLONY_VERSION;
    actx.relay = relay_monitor;
    actx.jwt = jwt;
    actx.open_paths = cfg.auth_open_routes;
    actx.api_key_cache_ttl = cfg.auth_api_key_cache_ttl;
    actx.credential_rate_percent = cfg.ratelimit_credential_percent;
    actx.metering_interval = cfg.quota_flush_interval;
    actx.secrets = secrets;
    adapters::http_server server{sys, hopts, std::move(actx)};
    try {
      server.start();
    } catch (const std::exception& e) {
      log::error("cannot start the HTTP server", {{"error", e.what()}});
      std::string what = e.what();
      bool bad_option = what.starts_with("tls-") || what.starts_with("TLS");
      if (bad_option)
        std::cerr << "colonyd: invalid value for " << what << "\n";
      caf::anon_send(timers, actors::stop_atom::value);
      caf::anon_send(notifier, actors::stop_atom::value);
      if (commands)
        caf::anon_send(commands, actors::stop_atom::value);
      runtime::stop_entity_registry(registry);
      if (relay)
        caf::anon_send(relay, actors::stop_atom::value);
      caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
      return bad_option ? 2 : 1;
    }
    log::info("listening",
              {{"address", cfg.listen_host + ":" + std::to_string(server.port())},
               {"scheme", cfg.tls_cert.empty() ? "http" : "https"},
               {"port", static_cast<int>(server.port())}});

    int sig = 0;
    sigwait(&signals, &sig);
    log::info("shutting down", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    start_shutdown_watchdog(signals, cfg.shutdown_timeout + shutdown_grace);
    shutdown_stage = "draining HTTP requests";
    server.stop_accepting();
    auto deadline = std::chrono::steady_clock::now() + cfg.shutdown_timeout;
    if (!server.drain(deadline)) {
      log::warn("shutdown timeout reached with requests still in flight");
      exit_code = 0; // the node still exits cleanly; the clients see the connection close
    }
    shutdown_stage = "stopping the HTTP server";
    server.stop();
  }
  caf::anon_send(timers, actors::stop_atom::value);
  stop_and_wait(sys, notifier, std::chrono::seconds(5), "the webhook notifier");
  // The command in hand finishes (its offset is committed) before the entities stop.
  if (commands)
    stop_and_wait(sys, commands, std::chrono::seconds(15), "the command consumer");
  shutdown_stage = "stopping the entities";
  runtime::stop_entity_registry(registry);
  // The relay flushes what is in flight and records the acknowledged events
  // before the store goes away.
  if (relay)
    stop_and_wait(sys, relay, std::chrono::seconds(8), "the event relay");
  shutdown_stage = "stopping the store and the actor system";
  caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
  log::info("stopped");
  log::flush();
  return exit_code;
}
