// actors::plugin_engine over the Lua sandbox, and the plugins module.
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "colony/adapters/plugins.hpp"
#include "colony/adapters/webhooks.hpp"
#include "colony/runtime/log.hpp"

namespace colony::adapters {
namespace {

actors::plugin_run run_of(lua::outcome&& o) {
  actors::plugin_run r;
  r.st = o.st == lua::outcome::state::done ? actors::plugin_run::state::done
    : o.st == lua::outcome::state::pending ? actors::plugin_run::state::pending
                                           : actors::plugin_run::state::failed;
  r.results = std::move(o.results);
  r.request = std::move(o.request);
  if (o.f != lua::fault::none)
    r.fault = std::string{lua::to_string(o.f)};
  r.message = std::move(o.message);
  r.instructions = o.instructions;
  r.needs_reset = o.needs_reset;
  return r;
}

/// colony.log(level, message): one line in the node's log, tagged with the
/// plugin; at most 2 KiB of message, levels debug|info|warn|error.
lua::host_reply plugin_log(const std::string& label, const std::string& args_json) {
  auto a = nlohmann::json::parse(args_json, nullptr, false);
  if (!a.is_array() || a.size() != 2 || !a[0].is_string() || !a[1].is_string())
    return {"null", std::string{"colony.log(level, message) takes two strings"}};
  auto lvl = a[0].get<std::string>();
  auto msg = a[1].get<std::string>();
  if (msg.size() > 2048)
    msg.resize(2048);
  auto level = lvl == "debug" ? log::level::debug
    : lvl == "info"           ? log::level::info
    : lvl == "warn"           ? log::level::warn
    : lvl == "error"          ? log::level::error
                              : std::optional<log::level>{};
  if (!level)
    return {"null", std::string{"colony.log: the level is debug, info, warn or error"}};
  log::write(*level, "plugin log", {{"plugin", label}, {"message", msg}});
  return {};
}

class code final : public actors::plugin_code {
public:
  explicit code(std::unique_ptr<lua::sandbox> s) : s_(std::move(s)) {}
  const std::vector<std::string>& hooks() const override { return s_->hooks(); }
  bool has(std::string_view hook) const override { return s_->has(hook); }
  actors::plugin_run call(std::string_view hook, const std::string& args_json) override {
    return run_of(s_->call(hook, args_json));
  }
  actors::plugin_run resume(const std::string& value_json, const std::optional<std::string>& error) override {
    return run_of(s_->resume(lua::host_reply{value_json, error}));
  }
  bool reset(actors::plugin_run* error) override {
    lua::outcome o;
    bool ok = s_->reset(&o);
    if (!ok && error != nullptr)
      *error = run_of(std::move(o));
    return ok;
  }
  std::size_t memory() const override { return s_->memory(); }

private:
  std::unique_ptr<lua::sandbox> s_;
};

class engine final : public actors::plugin_engine {
public:
  explicit engine(const lua::limits& lim) : lim_(lim) {}

  std::unique_ptr<actors::plugin_code> load(const std::string& label, const std::string& source,
                                            actors::plugin_run* error) const override {
    std::vector<lua::host_function> host;
    host.push_back({"", "log", [label](const std::string& args) { return plugin_log(label, args); }, false});
    // The rest wait for the plugin's actor (it answers from the store, the
    // tenant's users, or the call's own writes): the hook's coroutine yields.
    for (const auto& [table, name] : actors::plugin_host_calls())
      host.push_back({table, name, nullptr, true});
    lua::outcome o;
    auto s = lua::sandbox::create(label, source, lim_, std::move(host), &o);
    if (!s) {
      if (error != nullptr)
        *error = run_of(std::move(o));
      return nullptr;
    }
    return std::make_unique<code>(std::move(s));
  }

  std::string describe_limits() const override {
    return std::to_string(lim_.instructions) + " instructions, " + std::to_string(lim_.wall.count()) + " ms, " +
      std::to_string(lim_.memory >> 20) + " MiB of memory, " + std::to_string(lim_.output >> 10) + " KiB of results, " +
      std::to_string(lim_.host_calls) + " host calls per call";
  }

private:
  lua::limits lim_;
};

/// The threads hook code runs on (actors::plugin_executor): a FIFO queue,
/// `n` threads at nice `nice`. Linux's nice is per thread, so the actor
/// system's workers keep their priority and a plugin that spends its whole
/// budget yields the cores to them at once (docs/plugins.md, "Noisy neighbours").
class plugin_pool final : public actors::plugin_executor {
public:
  plugin_pool(int n, int nice) {
    for (int i = 0; i < n; ++i)
      threads_.emplace_back([this, nice] {
        if (nice != 0 && setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), nice) != 0)
          log::warn("the plugin pool runs at the node's priority (setpriority failed)");
        run();
      });
  }
  ~plugin_pool() override { stop(); }

  void post(std::function<void()> work) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_)
        return; // the node is going: the actor that waits is going too
      queue_.push_back(std::move(work));
    }
    cv_.notify_one();
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      queue_.clear();
    }
    cv_.notify_all();
    for (auto& t : threads_)
      if (t.joinable())
        t.join();
  }

private:
  void run() {
    for (;;) {
      std::function<void()> work;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (stopping_)
          return;
        work = std::move(queue_.front());
        queue_.pop_front();
      }
      work();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

using runtime::node_config;
namespace opt = runtime::opt;

class plugins_module_impl final : public runtime::module {
public:
  std::string_view name() const override { return "plugins"; }
  std::string_view title() const override { return "the plugin sandbox"; }

  void options(runtime::option_registry& r) override {
    const char* m = "plugins";
    r.add(m,
          opt::integer("plugins.instructions", "Lua VM instructions one hook call may run", 10'000, 1'000'000'000,
                       &node_config::plugin_instructions));
    r.add(m,
          opt::duration("plugins.time", "wall-clock time one hook call may take (waits for host calls excluded)",
                        std::chrono::milliseconds(1), std::chrono::seconds(10), &node_config::plugin_wall));
    r.add(m,
          opt::size("plugins.memory", "memory one plugin's Lua state may hold; bytes, or with KiB/MiB", 256 * 1024,
                    1024LL * 1024 * 1024, &node_config::plugin_memory));
    r.add(m,
          opt::size("plugins.output", "largest result of one hook call, as JSON; bytes, or with KiB/MiB", 1024,
                    64LL * 1024 * 1024, &node_config::plugin_output));
    r.add(m,
          opt::integer("plugins.host-calls", "colony.* calls one hook call may make", 0, 100'000,
                       &node_config::plugin_host_calls));
    r.add(m,
          opt::integer("plugins.threads", "threads hook code runs on, off the actor system's workers; 0: one per core",
                       0, 256, &node_config::plugin_threads));
    r.add(m,
          opt::duration("plugins.inline-time",
                        "a plugin's hook steps run on its actor until one takes longer than this, then on the "
                        "plugin threads (0: always on the threads)",
                        std::chrono::milliseconds(0), std::chrono::seconds(1), &node_config::plugin_inline_time));
    r.add(m,
          opt::integer("plugins.nice",
                       "nice value of those threads (0: the node's priority); higher yields the cores to requests", 0,
                       19, &node_config::plugin_nice));
    r.add(m,
          opt::integer("plugins.fault-threshold",
                       "broken limits in a row after which a plugin is suspended for its tenant", 1, 1000,
                       &node_config::plugin_fault_threshold));
    r.add(m,
          opt::duration("plugins.event-poll", "how often on_event cursors behind their tenant's events are looked for",
                        std::chrono::milliseconds(10), std::chrono::minutes(1), &node_config::plugin_event_poll));
    r.add(m,
          opt::integer("plugins.event-attempts",
                       "attempts at one event by on_event before it goes to the plugin's dead letters", 1, 100,
                       &node_config::plugin_event_attempts));
    r.add(m,
          opt::integer("plugins.event-batch", "events one on_event batch reads", 1, 10'000,
                       &node_config::plugin_event_batch));
    r.add(
      m,
      opt::size("plugins.kv-quota",
                "bytes of colony.kv one plugin may keep per tenant (keys, values, 64 a key); bytes, or with KiB/MiB",
                4096, 1024LL * 1024 * 1024, &node_config::plugin_kv_quota));
    r.add(m,
          opt::duration("plugins.http-timeout",
                        "the longest one colony.http.request may wait for its answer (a request asks for less)",
                        std::chrono::milliseconds(100), std::chrono::minutes(1), &node_config::plugin_http_timeout));
    r.add(m,
          opt::size("plugins.http-max-body", "largest answer colony.http.request reads; bytes, or with KiB/MiB", 1024,
                    64LL * 1024 * 1024, &node_config::plugin_http_max_body));
  }

  void describe(const node_config& cfg, std::vector<log::field>& f) const override {
    f.emplace_back("plugin_time_ms", static_cast<std::int64_t>(cfg.plugin_wall.count()));
  }

  void start(runtime::node_context& node) override {
    node.provide(make_lua_engine(plugin_limits(node.cfg)));
    int n = node.cfg.plugin_threads > 0 ? node.cfg.plugin_threads
                                        : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    pool_ = std::make_shared<plugin_pool>(n, node.cfg.plugin_nice);
    node.provide(std::static_pointer_cast<actors::plugin_executor>(pool_));
    // colony.http.request: the webhooks' client rules (SSRF checks, trusted CAs).
    outbound_http_options ho;
    ho.allow_private_targets = node.cfg.webhook_allow_private_targets;
    ho.ca_file = node.cfg.webhook_ca_file;
    ho.max_body = static_cast<std::size_t>(node.cfg.plugin_http_max_body);
    client_ = spawn_outbound_http(node.sys, ho);
    node.provide(std::make_shared<const actors::outbound_http_service>(actors::outbound_http_service{
      client_, node.cfg.plugin_http_timeout, static_cast<std::size_t>(node.cfg.plugin_http_max_body)}));
  }

  void stop(runtime::node_context& node, std::chrono::steady_clock::time_point deadline) override {
    if (pool_)
      pool_->stop(); // the entities stopped before this module: nothing waits for a step any more
    if (client_)
      runtime::stop_and_wait(node.sys, caf::actor_cast<caf::actor>(client_), deadline, "the plugins' http client");
  }

private:
  actors::outbound_http client_;
  std::shared_ptr<plugin_pool> pool_;
};

} // namespace

std::shared_ptr<const actors::plugin_engine> make_lua_engine(const lua::limits& lim) {
  return std::make_shared<const engine>(lim);
}

lua::limits plugin_limits(const runtime::node_config& cfg) {
  lua::limits lim;
  lim.instructions = static_cast<std::uint64_t>(cfg.plugin_instructions);
  lim.wall = cfg.plugin_wall;
  lim.memory = static_cast<std::size_t>(cfg.plugin_memory);
  lim.output = static_cast<std::size_t>(cfg.plugin_output);
  lim.host_calls = cfg.plugin_host_calls;
  return lim;
}

std::unique_ptr<runtime::module> plugins_module() { return std::make_unique<plugins_module_impl>(); }

} // namespace colony::adapters
