// Chores one node of a cluster runs at a time: the timer poller ("timers"),
// the outbox relay ("relay") and the webhook notifier ("webhooks") ask this
// seam before each round of work, and do nothing while it is not granted.
// On one node it always grants; the cluster (docs/architecture.md, "Next")
// replaces it by per-shard ownership fenced by an epoch, so two nodes never
// publish the same outbox rows or fire the same timer.
#pragma once

#include <memory>
#include <string_view>

namespace colony::runtime {

class singleton {
public:
  virtual ~singleton() = default;
  /// May this node do `chore` now?
  [[nodiscard]] virtual bool granted(std::string_view chore) = 0;
};

/// The single-node seam: every chore is this node's.
[[nodiscard]] std::shared_ptr<singleton> single_node_singleton();

} // namespace colony::runtime
