// The cells where live activations mirror how many commands they have
// handled (actors::activation::handled_cell), so that the directory can tell
// an activation's mailbox depth (commands routed to it minus commands it has
// handled) without asking it. CAF 0.17's mailbox size is safe to read only on
// the owning actor's thread (docs/console.md, "Mailboxes").
//
// One 8-byte cell per live activation, in chunks of 4096 that never move or
// shrink, so a cell's address stays valid while its entity runs; a cell is
// reused after its activation left the directory. An evicted activation
// (a shard moved away) may still handle what was in its mailbox and write
// its old cell after the cell was given to a new activation: the new one's
// depth reads low (clamped at 0) until its next command. The figure is a
// gauge for people, never a decision; the passivation handshake uses the
// entity's own count.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace colony::runtime::detail {

class handled_cells {
public:
  static constexpr std::uint32_t none = UINT32_MAX;

  /// A zeroed cell for a new activation; `none` past 64M live activations.
  std::uint32_t acquire() {
    std::lock_guard lock{mu_};
    std::uint32_t i = none;
    if (!free_.empty()) {
      i = free_.back();
      free_.pop_back();
    } else if (next_ < per_chunk * max_chunks) {
      if (next_ % per_chunk == 0)
        chunks_[next_ / per_chunk] = std::make_unique<std::atomic<std::uint64_t>[]>(per_chunk);
      i = next_++;
    } else {
      return none;
    }
    at(i)->store(0, std::memory_order_relaxed);
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
  std::atomic<std::uint64_t>* at(std::uint32_t i) const {
    return i == none ? nullptr : &chunks_[i / per_chunk][i % per_chunk];
  }

private:
  static constexpr std::uint32_t per_chunk = 4096;
  static constexpr std::uint32_t max_chunks = 16384;
  std::mutex mu_;
  std::array<std::unique_ptr<std::atomic<std::uint64_t>[]>, max_chunks> chunks_ {};
  std::vector<std::uint32_t> free_;
  std::uint32_t next_ = 0;
};

} // namespace colony::runtime::detail
