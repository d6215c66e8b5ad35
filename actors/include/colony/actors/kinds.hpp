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

#include <array>
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

/// Queueing time of one kind's commands (routed to handled), sampled: bucket
/// b counts waits of less than 2^b microseconds and at least half that; the
/// last holds the rest (over 2^(n-2) us, about 17 s).
struct wait_histogram {
  static constexpr std::size_t n = 26;
  std::array<std::atomic<std::uint64_t>, n> buckets{};
  void record(std::int64_t us) {
    std::size_t b = 0;
    while (b + 1 < n && (std::int64_t{1} << b) <= us)
      ++b;
    buckets[b].fetch_add(1, std::memory_order_relaxed);
  }
};

/// What a live activation shows the directory without being asked (a
/// mailbox depth, what it handled last, how long commands waited). The
/// activation writes `handled` and `last_ops`; the directory writes the
/// sample: the number (its routed count) and route time of one command,
/// when no sample is outstanding and the last one is at least 1 ms old.
/// All relaxed: figures for people, never decisions.
struct activation_cell {
  std::atomic<std::uint64_t> handled{0};  // commands handled
  std::atomic<std::uint64_t> last_ops{0}; // the last 8 ops handled, newest in the low byte (0: none)
  std::atomic<std::uint64_t> sample_seq{0};
  std::atomic<std::int64_t> sample_at_ns{0};   // steady clock
  std::atomic<wait_histogram*> waits{nullptr}; // its kind's (set before the activation starts)
  std::int64_t activated_ms = 0;               // wall clock (set before; the directory reads it under its lock)
};

/// What a fresh activation gets besides its key and the node's env.
struct activation {
  bool known_new = false; // its id was just minted: nothing to load
  /// Where it mirrors what it handled (activation_cell); null: nowhere. Kept
  /// alive by entity_env::handled_cells.
  activation_cell* cell = nullptr;
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
