#include "colony/runtime/entity_registry.hpp"

#include <array>
#include <chrono>
#include <atomic>
#include <caf/all.hpp>
#include <functional>
#include <mutex>
#include <unordered_map>

#include "colony/runtime/log.hpp"

namespace colony::runtime {
namespace {

using actors::entity_key;
using actors::entity_kind;

using clock = std::chrono::steady_clock;

struct slot {
  caf::actor actor;
  std::uint64_t forwarded = 0; // commands handed out for this activation
  clock::time_point last_routed;
};

class directory final : public actors::entity_router, public std::enable_shared_from_this<directory> {
public:
  directory(caf::actor_system& sys, std::shared_ptr<metrics> m) : sys_(sys), m_(std::move(m)) {}

  void set_env(std::shared_ptr<const actors::entity_env> env) { env_ = std::move(env); }

  using actors::entity_router::route;

  caf::actor route(const entity_key& key, bool known_new) override {
    auto name = key.str();
    auto& sh = shard_of(name);
    caf::actor fresh;
    {
      std::lock_guard lock{sh.mu};
      if (stopped_.load(std::memory_order_relaxed))
        return {};
      auto it = sh.live.find(name);
      if (it != sh.live.end()) {
        ++it->second.forwarded;
        it->second.last_routed = clock::now();
        return it->second.actor;
      }
      fresh = key.kind == entity_kind::tenant ? actors::spawn_tenant_actor(sys_, key, env_)
                                              : actors::spawn_user_actor(sys_, key, env_, known_new);
      sh.live.emplace(name, slot{fresh, 1, clock::now()});
    }
    ++stats_.activations;
    count_live(key.kind, +1);
    if (m_)
      m_->entity_activated(key.kind);
    // Outside the lock: if the activation has ended already, CAF runs the
    // functor right here, and it takes the lock itself.
    std::weak_ptr<directory> weak = shared_from_this();
    auto addr = fresh.address();
    caf::actor_cast<caf::abstract_actor*>(fresh)->attach_functor(
      [weak, name = std::move(name), kind = key.kind, addr](const caf::error& reason) {
        if (auto self = weak.lock())
          self->ended(name, kind, addr, reason);
      });
    return fresh;
  }

  bool release(const entity_key& key, const caf::actor_addr& who, std::uint64_t handled) override {
    auto name = key.str();
    auto& sh = shard_of(name);
    {
      std::lock_guard lock{sh.mu};
      auto it = sh.live.find(name);
      if (it == sh.live.end() || it->second.actor.address() != who)
        return true; // not (or no longer) in the directory: nothing can reach it
      if (it->second.forwarded != handled)
        return false; // commands are on their way to it: stay active
      sh.live.erase(it);
    }
    ++stats_.passivations;
    count_live(key.kind, -1);
    if (m_)
      m_->entity_passivated(key.kind);
    return true;
  }

  registry_stats stats() const {
    registry_stats s;
    s.live_tenants = stats_.live_tenants.load();
    s.live_users = stats_.live_users.load();
    s.activations = stats_.activations.load();
    s.passivations = stats_.passivations.load();
    s.crashes = stats_.crashes.load();
    return s;
  }

  /// Asks every activation that nothing was routed to for `idle` to go
  /// (idle_atom; it answers with release()). One sweep for all entities
  /// instead of a timer per entity: no clock entry per actor (memory) and no
  /// re-arming per message (CPU), at the price of passivating up to one
  /// sweep period late.
  void sweep(clock::duration idle) {
    auto cutoff = clock::now() - idle;
    std::vector<caf::actor> stale;
    for (auto& sh : shards_) {
      std::lock_guard lock{sh.mu};
      for (auto& [_, s] : sh.live)
        if (s.last_routed <= cutoff)
          stale.push_back(s.actor);
    }
    for (auto& a : stale)
      caf::anon_send(a, actors::idle_atom::value);
  }

  /// Node shutdown: every commit has been answered, so entities can go.
  void stop_all() {
    stopped_ = true;
    std::vector<caf::actor> all;
    for (auto& sh : shards_) {
      std::lock_guard lock{sh.mu};
      for (auto& [_, s] : sh.live)
        all.push_back(std::move(s.actor));
      sh.live.clear();
    }
    for (auto& a : all)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }

private:
  struct shard {
    std::mutex mu;
    std::unordered_map<std::string, slot> live;
  };
  static constexpr std::size_t shard_count = 32;

  shard& shard_of(const std::string& name) { return shards_[std::hash<std::string>{}(name) % shard_count]; }

  void count_live(entity_kind kind, int delta) {
    auto& n = kind == entity_kind::tenant ? stats_.live_tenants : stats_.live_users;
    auto now = n.fetch_add(delta) + delta;
    if (m_)
      m_->live_entities(kind, now);
  }

  /// An activation ended: passivated (already out), shut down, or crashed.
  void ended(const std::string& name, entity_kind kind, const caf::actor_addr& addr, const caf::error& reason) {
    auto& sh = shard_of(name);
    {
      std::lock_guard lock{sh.mu};
      auto it = sh.live.find(name);
      if (it == sh.live.end() || it->second.actor.address() != addr)
        return; // passivated or shut down already
      sh.live.erase(it);
    }
    count_live(kind, -1);
    if (reason && reason != caf::exit_reason::normal && reason != caf::exit_reason::user_shutdown) {
      ++stats_.crashes;
      if (m_)
        m_->entity_crashed(kind);
      log::error("entity crashed; it will be re-activated by its next message",
                 {{"entity", name}, {"reason", sys_.render(reason)}});
    }
  }

  struct counters {
    std::atomic<std::int64_t> live_tenants{0}, live_users{0}, activations{0}, passivations{0}, crashes{0};
  };

  caf::actor_system& sys_;
  std::shared_ptr<metrics> m_;
  std::shared_ptr<const actors::entity_env> env_;
  std::array<shard, shard_count> shards_;
  counters stats_;
  std::atomic<bool> stopped_{false};
};

struct registry_state {
  std::shared_ptr<directory> dir;
  static inline const char* name = "colony.registry";
};

caf::behavior registry(caf::stateful_actor<registry_state>* self, std::shared_ptr<directory> dir,
                       std::chrono::milliseconds idle) {
  self->state.dir = std::move(dir);
  // Sweep four times per idle period: an entity goes between 1 and 1.25
  // idle periods after its last command.
  auto period = std::max(std::chrono::milliseconds(10), idle / 4);
  self->delayed_send(self, period, actors::tick_atom::value);
  return {
    [self, idle, period](actors::tick_atom) {
      self->state.dir->sweep(idle);
      self->delayed_send(self, period, actors::tick_atom::value);
    },
    [self](entity_key& key, actors::command& cmd) -> caf::result<actors::entity_reply> {
      auto target = self->state.dir->route(key);
      if (!target)
        return actors::entity_reply::fail(actors::fail(actors::errc::unavailable, "the node is shutting down"));
      self->delegate(target, std::move(cmd));
      return caf::delegated<actors::entity_reply>{};
    },
    [self](actors::stats_atom) { return self->state.dir->stats(); },
    [self](actors::stop_atom) {
      self->state.dir->stop_all();
      self->quit();
    },
  };
}

} // namespace

entity_registry spawn_entity_registry(caf::actor_system& sys, actors::entity_env env, std::shared_ptr<metrics> m) {
  auto dir = std::make_shared<directory>(sys, std::move(m));
  env.router = dir;
  auto idle = env.idle_timeout;
  dir->set_env(std::make_shared<const actors::entity_env>(std::move(env)));
  auto actor = sys.spawn(registry, dir, idle);
  return entity_registry{std::move(actor), std::move(dir)};
}

} // namespace colony::runtime
