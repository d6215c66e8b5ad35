// The store module (store, storage.*): spawns the store service and waits
// for it to be ready before the modules that use it start; at shutdown it
// goes last but the secrets and metrics.
#include <caf/all.hpp>
#include <thread>

#include "colony/adapters/store.hpp"

namespace colony::adapters {
namespace {

using runtime::node_config;
namespace opt = runtime::opt;

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

store_options options_of(const node_config& cfg) {
  store_options o;
  o.spec = cfg.store;
  o.data_dir = cfg.data_dir;
  o.read_connections = cfg.store_read_connections;
  o.max_batch = cfg.store_max_batch;
  o.load_timeout = cfg.request_timeout;
  return o;
}

class store_module_impl final : public runtime::module {
public:
  std::string_view name() const override { return "store"; }
  std::string_view title() const override { return "the store"; }

  void options(runtime::option_registry& r) override {
    auto store =
      opt::string("store",
                  "sqlite: (colony.db in data-dir), sqlite:/path/file.db, or "
                  "postgresql://user[:password]@host:port/db; prefer COLONY_STORE for a DSN with a "
                  "password: it then never sits in a file",
                  &node_config::store, [](node_config&, const std::string& v) -> std::optional<std::string> {
                    if (v.starts_with("sqlite:") || v.starts_with("postgresql://") || v.starts_with("postgres://"))
                      return std::nullopt;
                    return "'" + runtime::mask_dsn(v) + "' is neither sqlite:[path] nor postgresql://...";
                  });
    store.secret = true; // may hold a password: dumped masked
    store.get = [](const node_config& c) { return c.store_for_display(); };
    r.add("store", std::move(store));
    r.add("store",
          opt::integer("storage.read-connections", "database connections for loads and lists", 1, 64,
                       &node_config::store_read_connections));
    r.add("store",
          opt::integer("storage.max-batch",
                       "most entity commits grouped into one transaction, and loads into one query", 1, 10'000,
                       &node_config::store_max_batch));
  }

  void describe(const node_config& cfg, std::vector<log::field>& out) const override {
    out.emplace_back("store", describe_store(options_of(cfg)));
  }

  void start(runtime::node_context& node) override {
    auto o = options_of(node.cfg);
    o.metrics = node.metrics;
    o.fence = node.fence;
    node.store = spawn_store(node.sys, o);
    await_store(node.sys, node.store);
  }

  void stop(runtime::node_context& node, std::chrono::steady_clock::time_point) override {
    caf::anon_send_exit(node.store, caf::exit_reason::user_shutdown);
  }
};

} // namespace

std::unique_ptr<runtime::module> store_module() { return std::make_unique<store_module_impl>(); }

} // namespace colony::adapters
