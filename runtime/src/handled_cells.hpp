// The cells where live activations mirror what the directory shows without
// asking them (actors::activation_cell): how many commands they handled, so
// that the directory can tell an activation's mailbox depth (commands routed
// to it minus commands it has handled), the ops they handled last, and the
// directory's sampled command whose wait they time. CAF 0.17's mailbox size
// is safe to read only on the owning actor's thread (docs/console.md,
// "Mailboxes").
//
// One 48-byte cell per live activation, in chunks of 4096 that never move or
// shrink, so a cell's address stays valid while its entity runs; a cell is
// reused after its activation left the directory. An evicted activation
// (a shard moved away) may still handle what was in its mailbox and write
// its old cell after the cell was given to a new activation: the new one's
// depth reads low (clamped at 0) until its next command. The figures are
// gauges for people, never decisions; the passivation handshake uses the
// entity's own count.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "colony/actors/kinds.hpp"

namespace colony::runtime::detail {

class handled_cells {
public:
  static constexpr std::uint32_t none = UINT32_MAX;

  /// A zeroed cell for a new activation of `kind`; `none` past 64M live activations.
  std::uint32_t acquire(actors::entity_kind kind) {
    std::lock_guard lock{mu_};
    std::uint32_t i = none;
    if (!free_.empty()) {
      i = free_.back();
      free_.pop_back();
    } else if (next_ < per_chunk * max_chunks) {
      if (next_ % per_chunk == 0)
        chunks_[next_ / per_chunk] = std::make_unique<actors::activation_cell[]>(per_chunk);
      i = next_++;
    } else {
      return none;
    }
    auto& c = chunks_[i / per_chunk][i % per_chunk];
    c.handled.store(0, std::memory_order_relaxed);
    c.last_ops.store(0, std::memory_order_relaxed);
    c.sample_seq.store(0, std::memory_order_relaxed);
    c.sample_at_ns.store(0, std::memory_order_relaxed);
    c.activated_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
    c.waits.store(&waits_[static_cast<std::size_t>(kind) % actors::max_kinds], std::memory_order_relaxed);
    return i;
  }

  void release(std::uint32_t i) {
    if (i == none)
      return;
    std::lock_guard lock{mu_};
    free_.push_back(i);
  }

  /// The cell of `i` (acquired and handed over through a lock or a message, so
  /// its chunk is visible), or null for `none`.
  actors::activation_cell* at(std::uint32_t i) const {
    return i == none ? nullptr : &chunks_[i / per_chunk][i % per_chunk];
  }

  /// The queueing times of `kind`'s sampled commands since the node started.
  [[nodiscard]] const actors::wait_histogram& waits(actors::entity_kind kind) const {
    return waits_[static_cast<std::size_t>(kind) % actors::max_kinds];
  }

private:
  static constexpr std::uint32_t per_chunk = 4096;
  static constexpr std::uint32_t max_chunks = 16384;
  std::mutex mu_;
  std::array<std::unique_ptr<actors::activation_cell[]>, max_chunks> chunks_{};
  std::array<actors::wait_histogram, actors::max_kinds> waits_{};
  std::vector<std::uint32_t> free_;
  std::uint32_t next_ = 0;
};

} // namespace colony::runtime::detail
