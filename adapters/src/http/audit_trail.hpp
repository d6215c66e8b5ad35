// Audit records that go with no change (authentication failures, denials,
// refused writes): queued and appended to the store in batches by a flusher
// actor every interval while records wait (it does not tick on an idle
// node) and at shutdown, so that a flood of bad requests costs one
// transaction per interval, not one per request. Records of
// changes are not written here: they commit with their change.
//
// Thread-safe.
#pragma once

#include <caf/fwd.hpp>
#include <chrono>
#include <memory>

#include "colony/actors/ports/store_port.hpp"

namespace colony::adapters::http {

class audit_trail {
public:
  audit_trail(caf::actor_system& sys, actors::store_port store, std::chrono::milliseconds interval);
  ~audit_trail();
  audit_trail(const audit_trail&) = delete;
  audit_trail& operator=(const audit_trail&) = delete;

  void record(actors::audit_record r);
  /// Appends what is queued now and waits for it (at most `timeout`).
  void flush_now(std::chrono::milliseconds timeout);

  struct queue;

private:
  std::shared_ptr<queue> queue_;
  caf::actor_system& sys_;
  actors::store_port store_;
  caf::actor flusher_;
};

} // namespace colony::adapters::http
