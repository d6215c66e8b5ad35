// What the console and colonyctl read of one node's entities
// (docs/console.md): computed from the directory when somebody asks, never
// sampled in the background, so a node nobody watches does no work for them
// beyond the counters the directory keeps anyway (one atomic add per
// activation, passivation and crash, and a slot of a fixed ring per
// passivation; per message, the relaxed store of the entity's handled count
// into its cell, for the mailbox depth).
//
// A census walks the directory's shards one lock at a time (each held for
// 1/32 of the walk): about 30 ms for a million live entities, paid only by
// the asking request. Answers are bounded: the top `limit` tenants, the last
// `crash_ring` crashes and `end_ring` passivations, one entity by its exact
// key; never a list of every activation.
#pragma once

#include <array>
#include <memory>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "colony/actors/kinds.hpp"
#include "colony/runtime/entity_registry.hpp"

namespace colony::runtime {

/// Per kind, since the node started.
struct kind_counts {
  actors::entity_kind kind{};
  std::int64_t live = 0;
  std::int64_t activations = 0;
  std::int64_t passivations = 0;
  std::int64_t crashes = 0;
};

/// One tenant's live activations by kind id (index = entity_kind).
struct tenant_live {
  std::string tenant_id;
  std::int64_t total = 0;
  std::array<std::int64_t, actors::max_kinds> by_kind{};
};

struct census {
  std::vector<kind_counts> kinds;       // every registered kind
  std::vector<tenant_live> top_tenants; // most live activations first, at most the limit asked for
  std::int64_t tenants_live = 0;        // tenants with at least one live activation
};

/// One crash: the entity's handler threw and the activation ended.
struct crash_record {
  actors::entity_kind kind{};
  std::string tenant_id;
  std::string id;
  std::string reason;
  std::int64_t at_ms = 0; // wall clock, Unix milliseconds
};

inline constexpr std::size_t crash_ring = 64;

/// How one of an entity's activations ended, as the actor page lists it.
struct lifecycle_event {
  enum what_t : std::uint8_t {
    passivated, // idle for entity.idle-timeout, or asked by an operator
    evicted,    // its tenant's shard moved to another node (a hand-off or a takeover)
    crashed,    // its handler threw (`reason` says what)
  };
  what_t what = passivated;
  std::string reason;
  std::int64_t at_ms = 0; // wall clock, Unix milliseconds
};

/// The node remembers the last `end_ring` passivations and evictions (one
/// slot each, ~100 bytes, a ring: no history per entity that ever ran).
inline constexpr std::size_t end_ring = 256;

/// One activation, by its exact key.
struct entity_probe {
  std::uint64_t routed = 0;      // commands handed to this activation
  std::int64_t idle_ms = 0;      // since the last one
  std::uint64_t depth = 0;       // of those, not handled yet (its mailbox)
  std::uint64_t last_ops = 0;    // the last 8 ops it handled (actors::op), newest in the low byte, 0: none
  std::int64_t activated_ms = 0; // when this activation started (wall clock, to the second)
};

/// Mailbox depths of one kind's live activations on this node.
struct mailbox_kind {
  actors::entity_kind kind{};
  std::int64_t live = 0;
  std::int64_t non_empty = 0; // activations with a command waiting
  std::int64_t queued = 0;    // commands waiting, summed
  std::uint64_t max = 0;
  /// (upper bound, activations): depth 0, then up to 1, 2, 4, 8, … (powers
  /// of two), ascending; only bounds that occur.
  std::vector<std::pair<std::uint64_t, std::int64_t>> buckets;
  /// Queueing time (routed to handled) of the sampled commands, counts per
  /// actors::wait_histogram bucket: since the node started, and since the
  /// previous census (the window; all zero when there was none).
  std::vector<std::uint64_t> waits, waits_window;
};

/// One of the deepest mailboxes, with its depth at the previous census
/// (the window), if it was among the deepest then.
struct deep_mailbox {
  actors::entity_kind kind{};
  std::string tenant_id;
  std::string id;
  std::uint64_t depth = 0;
  std::uint64_t routed = 0;
  std::int64_t idle_ms = 0;
  std::optional<std::uint64_t> depth_before;
  bool growing = false; // deeper than at the previous census (or new among the deepest)
};

struct mailbox_census {
  std::vector<mailbox_kind> kinds;   // every registered kind
  std::vector<deep_mailbox> deepest; // depth > 0 only, deepest first, at most the limit asked for
  std::int64_t window_ms = 0;        // since the census "growing" compares with (0: none before)
};

/// The node's own directory, whatever routes in front of it (the cluster
/// router): the entities module provides it (node.find<const local_entities>()).
class local_entities {
public:
  explicit local_entities(std::shared_ptr<actors::entity_router> directory) : dir_(std::move(directory)) {}
  /// Counts per kind and the top `limit` tenants by live activations.
  [[nodiscard]] census take_census(std::size_t limit) const;
  /// One tenant's live activations (tenant_id set, zero counts if none).
  [[nodiscard]] tenant_live tenant_census(const std::string& tenant_id) const;
  /// The last crashes, newest first (at most crash_ring).
  [[nodiscard]] std::vector<crash_record> recent_crashes() const;
  /// How `key`'s earlier activations on this node ended, newest first, as
  /// far as the rings (end_ring, crash_ring) still hold them.
  [[nodiscard]] std::vector<lifecycle_event> lifecycle(const actors::entity_key& key) const;
  /// The activation of `key` on this node, if it is live.
  [[nodiscard]] std::optional<entity_probe> probe(const actors::entity_key& key) const;
  /// The live activation of `key` on this node (invalid if none): the
  /// console's passivate asks it (passivate_atom) to go.
  [[nodiscard]] caf::actor activation(const actors::entity_key& key) const;
  /// Mailbox depths per kind and the `limit` deepest (one walk of the
  /// directory). The previous call at least a second ago is the window that
  /// "growing" compares with.
  [[nodiscard]] mailbox_census mailboxes(std::size_t limit) const;

private:
  std::shared_ptr<actors::entity_router> dir_; // spawn_entity_registry's directory
};

} // namespace colony::runtime
