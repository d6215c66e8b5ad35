// The membership and shard tables in PostgreSQL (libpqxx 6.4), on a
// connection of their own (never the store's pool: a busy store must not
// delay a lease renewal). Blocking: used by the membership manager, a
// detached actor. Every membership change is one transaction that first
// locks the cluster's version row and bumps it: one total order of views,
// as with Orleans's version CAS, but decided on the rows as they are under
// the lock, so no retry loop (docs/clustering.md).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "state.hpp"

namespace colony::adapters::cluster {

/// What an operator's drain or undrain found: `error` is empty when it was
/// done (or there was nothing to do); else `code` is the HTTP status.
struct drain_outcome {
  int code = 202;
  std::string error;
  std::string incarnation; // of the member
  std::string status;      // its status afterwards
};

/// The reason a draining member carries when an operator asked for it
/// (a SIGTERM drain carries none, and cannot be undone).
inline constexpr const char* drain_requested = "drain requested";

class membership_table {
public:
  membership_table(std::string dsn, self_info me, const runtime::node_config& cfg);
  ~membership_table();

  /// Connects (statement and lock time-outs set) and makes sure the
  /// cluster's version row and its 4096 shard rows exist. Throws on failure.
  void connect();
  [[nodiscard]] bool connected() const;

  /// Inserts this incarnation as joining; an older live incarnation of the
  /// same node name is marked dead ("superseded"). Throws if a newer one lives.
  void join(const std::string& caf_node_id);
  /// Renews the lease (database clock). nullopt: this incarnation is not
  /// live in the table any more (declared dead): the node must stop.
  [[nodiscard]] std::optional<std::int64_t> renew();
  /// Reads the members (live, and dead ones of the last 10 minutes) and the shard table.
  [[nodiscard]] std::shared_ptr<routing> read();
  /// Sets this node's status (active, draining, dead with a reason).
  void set_status(status s, const std::string& reason = {});
  /// Marks dead every live member whose lease ran out more than `grace` ago.
  /// Returns their node names.
  std::vector<std::string> expire(std::chrono::milliseconds grace);
  /// Adds this node's suspicion vote against `target`; declares it dead when
  /// the fresh votes reach votes_needed(). True if it is dead now.
  bool suspect(const std::string& target);
  /// Claims `shards` (unowned, or owned by a dead incarnation). Returns the
  /// (shard, epoch) pairs it got.
  std::vector<std::pair<std::uint32_t, std::int64_t>> claim(const std::vector<std::uint32_t>& shards);
  /// Hands `shards` owned by this incarnation to `to` (an active member with a
  /// live lease). Returns those moved.
  std::vector<std::uint32_t> hand_off(const std::vector<std::uint32_t>& shards, const std::string& to);
  /// Leaves every shard of this incarnation unowned (a last node draining).
  int release_all();
  /// An operator's drain (`on`) or undrain of the live member named
  /// `node_name`: active -> draining (reason "drain requested") or back.
  /// The member's own manager sees it at its next read and hands its shards
  /// off (or lets them come back). Never drains the last active member.
  drain_outcome set_drain(const std::string& node_name, bool on);
  /// Test hook: takes `shard` whatever its owner (a forced double activation).
  std::int64_t force_claim(std::uint32_t shard);

private:
  std::string dsn_;
  self_info me_;
  const runtime::node_config& cfg_;
  struct connection; // the pqxx connection (pqxx stays inside membership.cpp)
  std::unique_ptr<connection> conn_;
};

} // namespace colony::adapters::cluster
