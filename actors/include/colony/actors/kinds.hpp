// Entity kinds are open: each kind registers what the node needs to know
// about it, instead of `tenant ? … : …` in the directory and tenant strings
// in the timer service. A kind is
//   - an id (entity_kind, a byte: 1 tenant, 2 user; a new kind takes the next
//     free one in its own folder) and a name (logs, metrics, entity keys);
//   - how to spawn an activation;
//   - the durable timers it answers (timer name → the command it fires);
// and its placement key is its tenant id (placement_key): a tenant, its
// users, and its plugins and models next, live together on one node, so seat
// counting stays local and the tenant is the unit of isolation.
//
// Adding a kind: actors/<kind>/..._kind.cpp returns its kind_spec, and one
// line in builtin_kinds() (actors/src/kinds.cpp) registers it.
#pragma once

#include <atomic>
#include <caf/fwd.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "colony/actors/messages.hpp"

namespace colony::actors {

struct entity_env;
struct timer_row;

/// The most kinds a node knows (ids 1 .. max_kinds - 1): per-kind counters are arrays.
inline constexpr std::size_t max_kinds = 16;

/// What a fresh activation gets besides its key and the node's env.
struct activation {
  bool known_new = false; // its id was just minted: nothing to load
  /// Where it mirrors the count of commands it has handled, so that the
  /// directory can tell its mailbox depth (commands routed to it minus
  /// commands handled) without asking it; null: nowhere. Kept alive by
  /// entity_env::handled_cells.
  std::atomic<std::uint64_t>* handled_cell = nullptr;
};

struct kind_spec {
  entity_kind kind{};
  std::string name;
  /// A fresh activation of `key`.
  std::function<caf::actor(caf::actor_system&, entity_key, std::shared_ptr<const entity_env>, activation)> spawn;
  struct timer {
    std::string name; // the timer's kind as stored, e.g. "trial_expiry"
    /// The command a due timer sends to its entity (`t.target_id` of `t.tenant_id`).
    std::function<command(const timer_row& t)> fire;
  };
  std::vector<timer> timers;
};

class kind_registry {
public:
  /// Registers a kind; throws std::invalid_argument for a taken or out-of-range id, or a timer name taken.
  void add(kind_spec spec);
  [[nodiscard]] const kind_spec* find(entity_kind k) const;
  /// The entity and command of a due timer; nullopt for a timer no kind answers.
  [[nodiscard]] std::optional<std::pair<entity_key, command>> timer_command(const timer_row& t) const;
  [[nodiscard]] const std::vector<kind_spec>& all() const { return kinds_; }

private:
  std::vector<kind_spec> kinds_;
};

/// The kinds every node has: tenant and user.
[[nodiscard]] const kind_registry& builtin_kinds();

/// Where an entity lives: its tenant's id, for every kind.
[[nodiscard]] inline const std::string& placement_key(const entity_key& key) { return key.tenant_id; }

} // namespace colony::actors
