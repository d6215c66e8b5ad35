// Chores one node of a cluster runs at a time: the timer poller ("timers"),
// the outbox relay ("relay") and the webhook notifier ("webhooks") ask this
// seam before each round of work, and do nothing while it is not granted.
// On one node it always grants. On a cluster the cluster module puts its
// policy behind the node's seam (chore_seam): a chore is granted to the
// node that owns the chore's shard (shard_of("chore:<name>")) while it
// serves, so its failover and hand-off are a shard's, fenced by the epoch
// (docs/clustering.md, "Chores").
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>
#include <mutex>
#include <string_view>

namespace colony::runtime {

class singleton {
public:
  virtual ~singleton() = default;
  /// May this node do `chore` now?
  [[nodiscard]] virtual bool granted(std::string_view chore) = 0;
  /// The shards whose per-shard work (timers) is this node's now; nullopt:
  /// all of it (one node).
  [[nodiscard]] virtual std::optional<std::vector<std::int32_t>> shards() { return std::nullopt; }
};

/// The single-node seam: every chore is this node's.
[[nodiscard]] std::shared_ptr<singleton> single_node_singleton();

/// The node's seam (node_context::chores): grants as its policy says. A
/// module that starts later (the cluster) replaces the policy, and the
/// services that took the seam before see the change.
class chore_seam final : public singleton {
public:
  [[nodiscard]] bool granted(std::string_view chore) override;
  [[nodiscard]] std::optional<std::vector<std::int32_t>> shards() override;
  void use(std::shared_ptr<singleton> policy);

private:
  std::mutex mu_;
  std::shared_ptr<singleton> policy_ = single_node_singleton();
};

} // namespace colony::runtime
