// The cluster as the rest of the node sees it (docs/clustering.md):
//
// - placement: a fixed space of 4096 shards; a tenant (with its users) lives
//   in shard_of(tenant id); the desired owner of a shard is the active member
//   that wins rendezvous hashing (HRW) over node names, so a node restarted
//   under its name gets its own shards back and a join or a leave moves only
//   the shards that member wins or held;
// - the write fence a store checks inside every entity commit (this
//   incarnation must own the shard in shard_owner), armed by the cluster
//   module before the node serves;
// - cluster_service, what the HTTP module shows (GET /v1/cluster).
//
// Pure code: no database, no network. The cluster module (adapters/cluster)
// implements membership, forwarding and failover on top.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace colony::runtime::cluster {

inline constexpr std::uint32_t shard_count = 4096;

/// FNV-1a 64 of the bytes, then the SplitMix64 finalizer (so the low bits
/// that `% shard_count` keeps depend on every input byte). Fixed forever:
/// changing it moves every tenant.
[[nodiscard]] std::uint64_t hash64(std::string_view bytes);

/// The shard of a tenant: hash64(tenant id) % 4096.
[[nodiscard]] std::uint32_t shard_of(std::string_view tenant_id);

/// HRW score of a (shard, node name) pair; the highest score wins.
[[nodiscard]] std::uint64_t hrw_score(std::uint32_t shard, std::string_view node_name);

/// The index in `names` of the desired owner of `shard` (ties: the smaller
/// name); nullopt if `names` is empty.
[[nodiscard]] std::optional<std::size_t> hrw_owner(std::uint32_t shard, const std::vector<std::string>& names);

/// Suspicion votes that declare a member dead (Orleans):
/// min(2, (active non-stale members + 1) / 2), at least 1.
[[nodiscard]] int votes_needed(int active_non_stale);

/// The fence a store checks in every entity commit. Off on a single node.
/// Armed once (before the node serves), then read-only, so store threads read
/// it without a lock.
class write_fence {
public:
  void arm(std::string cluster, std::string incarnation) {
    cluster_ = std::move(cluster);
    incarnation_ = std::move(incarnation);
    armed_.store(true, std::memory_order_release);
  }
  [[nodiscard]] bool armed() const { return armed_.load(std::memory_order_acquire); }
  [[nodiscard]] const std::string& cluster() const { return cluster_; }
  [[nodiscard]] const std::string& incarnation() const { return incarnation_; }

private:
  std::atomic<bool> armed_{false};
  std::string cluster_;
  std::string incarnation_;
};

/// One member as GET /v1/cluster shows it.
struct member_view {
  std::string node_name;
  std::string incarnation;
  std::string status;             // joining | active | draining | dead
  std::string address;            // cluster address host:port
  std::string http;               // HTTP address host:port
  std::int64_t lease_ms = 0;      // lease left by the database clock at the last read (negative: expired)
  std::int64_t shards = 0;        // shards it owns
  std::int64_t target_shards = 0; // shards the placement rule gives it (0 unless active)
  std::string dead_reason;
  std::string drained_by; // draining: "operator" (POST .../drain) or "shutdown" (SIGTERM)
  bool connected = false; // this node has a live connection to it (always true for itself)
};

struct cluster_view {
  std::string cluster_name;
  std::string node_name; // the node that answers
  std::string incarnation;
  std::string status;
  std::int64_t version = 0;
  std::int64_t shards_moving = 0;   // shards not yet on the member the placement rule names
  std::int64_t shards_unowned = 0;  // shards without a live owner
  std::vector<member_view> members; // live ones, then the most recent dead ones
};

struct placement_view {
  std::uint32_t shard = 0;
  std::string owner; // node name; empty: unowned right now
  std::string owner_incarnation;
  std::int64_t epoch = 0;
};

/// What a drain or undrain request did: `code` is the HTTP status (202 done,
/// 200 nothing to do, else an error with `error` saying why).
struct drain_result {
  int code = 202;
  std::string error;
  std::string status; // the member's status afterwards
};

/// The node's name: node-name, else the host name (X-Colony-Node, placement).
[[nodiscard]] std::string node_name_of(const std::string& configured);

/// What the HTTP module asks of the cluster module (node.find<cluster_service>()).
class cluster_service {
public:
  virtual ~cluster_service() = default;
  [[nodiscard]] virtual cluster_view view() const = 0;
  [[nodiscard]] virtual placement_view placement(std::string_view tenant_id) const = 0;
  /// An operator drains (`on`) or undrains the live member `node_name`: its
  /// shards go to the other active members (or come back). Blocks.
  virtual drain_result drain(std::string_view node_name, bool on) = 0;
  /// Sends (topic, payload) to every connected member, which hands it to its
  /// subscribers of `topic` (not to this node's: the caller acts locally).
  /// Best effort: a member not connected right now misses it, so what
  /// relies on it keeps a time-bounded fallback (a cache TTL).
  virtual void broadcast(std::string topic, std::string payload) = 0;
  /// Calls `fn(payload)` for every broadcast of `topic` from another member
  /// (on a cluster thread) until unsubscribed. Returns the subscription.
  virtual std::uint64_t subscribe(std::string topic, std::function<void(const std::string&)> fn) = 0;
  /// Ends a subscription; returns once no call of it is running.
  virtual void unsubscribe(std::uint64_t id) = 0;
  /// True if this node owns the tenant's shard right now (by its table).
  [[nodiscard]] virtual bool owned_here(std::string_view tenant_id) const = 0;
  /// Asks the tenant's owner node to handle (topic, payload) with what it
  /// serves for `topic`; `answer` gets its answer, or nullopt if there is no
  /// other owner to ask (it is this node, none, not connected), it does not
  /// serve the topic or own the shard any more, or it did not answer within
  /// `timeout`. Never blocks; `answer` runs once, on a cluster thread.
  virtual void ask_owner(std::string tenant_id, std::string topic, std::string payload,
                         std::chrono::milliseconds timeout, std::function<void(std::optional<std::string>)> answer) = 0;
  /// What this node answers to ask_owner(…, topic, …) from another member,
  /// for tenants it owns: `fn(payload, reply)` calls reply once, from any
  /// thread. Returns the registration (unsubscribe ends it).
  virtual std::uint64_t serve(std::string topic,
                              std::function<void(const std::string&, std::function<void(std::string)>)> fn) = 0;
  /// One member's answer to ask_members: `answer` empty if it gave none
  /// (`why` says: not connected, timed out, not serving the topic).
  struct member_answer {
    std::string node_name;
    std::optional<std::string> answer;
    std::string why;
  };
  /// Asks every other live member (joining, active, draining) what it
  /// serves for `topic` (serve()), all at once; `done` gets one entry per
  /// member asked, once each has answered or `timeout` passed. Never
  /// blocks; `done` runs once, on any thread (at once if nobody is asked).
  virtual void ask_members(std::string topic, std::string payload, std::chrono::milliseconds timeout,
                           std::function<void(std::vector<member_answer>)> done) = 0;
  /// Test hook (debug.fault-injection): this node claims the tenant's shard
  /// whatever its owner. Returns the new epoch (0: refused). Blocks.
  virtual std::int64_t force_claim(std::string_view tenant_id) = 0;
};

} // namespace colony::runtime::cluster
