// The life of a node (module.hpp): configuration, logging, the actor system,
// the modules' start in order, the signal, and one shutdown sequence that
// stops them in reverse order, each within its budget, under a watchdog.
#include <caf/all.hpp>
#include <caf/io/middleman.hpp>
#include <atomic>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <pthread.h>
#include <sched.h>
#include <sstream>
#include <sys/stat.h>
#include <thread>

#include "colony/protocol/time.hpp"
#include "colony/runtime/module.hpp"

namespace colony::runtime {

int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
    return CPU_COUNT(&set);
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

void readiness_board::add(std::function<readiness_line()> probe) {
  std::lock_guard lock{mu_};
  probes_.push_back(std::move(probe));
}

std::vector<readiness_line> readiness_board::lines() const {
  std::lock_guard lock{mu_};
  std::vector<readiness_line> out;
  out.reserve(probes_.size());
  for (const auto& p : probes_)
    out.push_back(p());
  return out;
}

void stop_and_wait(caf::actor_system& sys, const caf::actor& who, std::chrono::steady_clock::time_point deadline,
                   std::string_view what) {
  if (!who)
    return;
  caf::scoped_actor waiter{sys};
  waiter->monitor(who);
  waiter->send(who, actors::stop_atom::value);
  auto left =
    std::max(std::chrono::milliseconds(1),
             std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
  waiter->receive([](caf::down_msg&) {},
                  caf::after(left) >> [what] { log::warn(std::string{what} + " did not stop in time"); });
}

namespace {

/// After shutdown-timeout (the drain of HTTP requests), the rest of the
/// shutdown has this long before the watchdog ends the process
/// (docs/configuration.md).
constexpr std::chrono::seconds shutdown_grace{10};

/// What the shutdown is doing, for the watchdog's last words.
std::atomic<const char*> shutdown_stage{"running"};

/// Once SIGTERM has come, the process ends by `budget` whatever its threads
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

/// The options of the node itself, registered before any module's.
void node_options(option_registry& r) {
  const std::string m = "node";
  r.add(m,
        opt::string("data-dir", "directory for the embedded store and node files (made 0700 if missing)",
                    &node_config::data_dir, opt::not_empty));
  r.add(m,
        opt::choice("log-format", "text (for terminals) or json (one JSON object per line)", {"text", "json"},
                    &node_config::log_format));
  r.add(m,
        opt::choice("log-level", "least severe level that is logged", {"trace", "debug", "info", "warn", "error"},
                    &node_config::log_level));
  r.add(m,
        opt::duration("request-timeout", "longest time a request may wait for its entity or the store (then 503)",
                      std::chrono::milliseconds(100), std::chrono::minutes(5), &node_config::request_timeout));
  r.add(m,
        opt::duration("shutdown-timeout", "on SIGTERM/SIGINT, longest wait for in-flight requests",
                      std::chrono::milliseconds(100), std::chrono::minutes(5), &node_config::shutdown_timeout));
  r.add(m,
        opt::integer("scheduler.threads", "actor scheduler threads (0: one per usable core)", 0, 256,
                     &node_config::scheduler_threads));
  auto clock = opt::custom(
    "debug.clock-start", option_kind::string,
    "tests only: the node's clock starts at this UTC time (YYYY-MM-DDTHH:MM:SSZ) and runs on from there; empty: "
    "the system clock",
    [](node_config& c, const std::string& v) -> std::optional<std::string> {
      if (v.empty()) {
        c.clock_start_us = 0;
        c.clock_start.clear();
        return std::nullopt;
      }
      std::tm tm{};
      std::istringstream in{v};
      in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%SZ");
      if (in.fail() || in.peek() != std::char_traits<char>::eof())
        return "'" + v + "' is not a UTC time such as 2026-12-31T23:59:50Z";
      c.clock_start_us = static_cast<std::int64_t>(timegm(&tm)) * 1'000'000;
      c.clock_start = v;
      return std::nullopt;
    },
    [](const node_config& c) { return c.clock_start; });
  r.add(m, std::move(clock));
  r.add(m,
        opt::boolean("debug.fault-injection", "honour X-Colony-Fault: crash (tests only; never in production)",
                     &node_config::fault_injection));
}

/// Creates the data directory for the node's user only; warns if others may read it.
bool prepare_data_dir(const std::string& dir) {
  try {
    if (std::filesystem::create_directories(dir))
      std::filesystem::permissions(dir, std::filesystem::perms::owner_all);
    auto perms = std::filesystem::status(dir).permissions();
    if ((perms & (std::filesystem::perms::group_all | std::filesystem::perms::others_all)) !=
        std::filesystem::perms::none)
      log::warn("the data directory is open to other users; it holds personal data and secrets (chmod 700 it)",
                {{"data_dir", dir}});
    return true;
  } catch (const std::exception& e) {
    log::error("cannot create the data directory", {{"data_dir", dir}, {"error", e.what()}});
    return false;
  }
}

} // namespace

option_registry registry_of(const module_list& modules) {
  option_registry r;
  node_options(r);
  for (const auto& m : modules)
    m->options(r);
  return r;
}

int run_node(int argc, char** argv, char** envp, module_list modules, const node_info& info) {
  auto res = load_config(argc, argv, envp, registry_of(modules));
  if (res.what == config_result::action::exit) {
    (res.exit_code == 0 ? std::cout : std::cerr) << res.output;
    return res.exit_code;
  }
  const auto& cfg = res.config;
  log::init(cfg.log_format == "json" ? log::format::json : log::format::text, level_of(cfg.log_level));
  std::vector<log::field> fields{{"version", info.version}, {"allocator", info.allocator}};
  for (const auto& m : modules)
    m->describe(cfg, fields);
  fields.emplace_back("data_dir", cfg.data_dir);
  fields.emplace_back("config", cfg.config_file.empty() ? std::string{"(none: built-in defaults)"} : cfg.config_file);
  log::write(log::level::info, "colonyd starting", fields);
  if (cfg.clock_start_us != 0) {
    protocol::set_clock_offset_us(cfg.clock_start_us - protocol::now_us());
    log::warn("the clock is shifted for tests (debug.clock-start)",
              {{"now", protocol::format_rfc3339(protocol::now_us())}});
  }
  if (cfg.fault_injection)
    log::warn("fault injection is enabled (debug.fault-injection): never run like this in production");

  // Signals are taken by sigwait below; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // Everything the node writes (the SQLite files, admin.key, the secrets
  // key) is for its own user only.
  ::umask(0077);
  if (!prepare_data_dir(cfg.data_dir))
    return 1;

  caf::actor_system_config caf_cfg;
  caf_cfg.load<caf::io::middleman>();
  // CAF's own default is max(cores, 4): on a 2-core machine that is twice
  // as many workers as cores, and the extra context switches cost ~15% of
  // GET throughput (perf: finish_task_switch on top). One per core instead.
  caf_cfg.set("scheduler.max-threads", cfg.scheduler_threads > 0 ? cfg.scheduler_threads : usable_cores());
  // A worker with nothing to do polls 100 times, then 500 times with a 50 µs
  // sleep between polls (CAF's defaults), then sleeps 10 ms at a time. Every
  // timer tick restarts that, so an idle node spent ~13% of a core on those
  // sleeps; 50 moderate polls cut it to ~2% with GET throughput and the
  // latency of sparse requests unchanged (docs/performance.md).
  caf_cfg.set("work-stealing.moderate-poll-attempts", 50);
  for (const auto& m : modules)
    m->system_config(caf_cfg, cfg);
  caf::actor_system sys{caf_cfg};
  node_context node{sys, cfg};
  node.version = info.version;

  // The names outlive every read of shutdown_stage (the modules live until return).
  std::vector<std::string> stages;
  stages.reserve(modules.size());
  for (const auto& m : modules)
    stages.push_back("stopping " + std::string{m->title()});
  auto stop_started = [&](std::size_t count) {
    for (std::size_t i = count; i-- > 0;) {
      shutdown_stage = stages[i].c_str();
      auto& m = *modules[i];
      try {
        m.stop(node, std::chrono::steady_clock::now() + m.stop_budget(cfg));
      } catch (const std::exception& e) {
        log::error("a module did not stop cleanly", {{"module", std::string{m.name()}}, {"error", e.what()}});
      }
    }
  };

  std::size_t started = 0;
  for (; started < modules.size(); ++started) {
    auto& m = *modules[started];
    int code = 0;
    std::string why;
    try {
      m.start(node);
    } catch (const start_error& e) {
      code = e.exit_code;
      why = e.what();
    } catch (const std::exception& e) {
      code = 1;
      why = e.what();
    }
    if (code != 0) {
      log::error("cannot start", {{"module", std::string{m.name()}}, {"error", why}});
      if (code == 2)
        std::cerr << "colonyd: " << why << "\n";
      stop_started(started);
      log::flush();
      return code;
    }
  }

  int sig = 0;
  sigwait(&signals, &sig);
  log::info("shutting down", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  start_shutdown_watchdog(signals, cfg.shutdown_timeout + shutdown_grace);
  stop_started(started);
  shutdown_stage = "stopping the actor system";
  log::info("stopped");
  log::flush();
  return 0;
}

} // namespace colony::runtime
