// What each tenant's own credentials ask of this node and how it answers,
// for the console's tenant page (GET /v1/admin/tenants/{t}): requests by
// outcome since the node started and over the last minute, in six 10-second
// buckets. Counted where the answer leaves (api.cpp), so a call refused by
// the tenant's owner node (its rate limit, relayed) counts at the node that
// answered it; the tenant page adds every node's counts.
//
// Platform credentials are not counted: an operator watching a tenant must
// not raise its request rate. Memory is bounded: 16 shards of at most 4,096
// tenants (~300 bytes each); a full shard forgets the tenants with no call in
// the last minute, and past that counts the call as untracked.
//
// Thread-safe: any Asio thread counts, under its shard's lock.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace colony::adapters::http {

class tenant_traffic {
public:
  using clock = std::chrono::steady_clock;

  struct counts {
    std::uint64_t requests = 0;
    std::uint64_t client_errors = 0;  // 4xx but 429
    std::uint64_t server_errors = 0;  // 5xx
    std::uint64_t rate_limited = 0;   // 429 rate-limited
    std::uint64_t quota_exceeded = 0; // 429 quota-exceeded
  };
  struct view {
    counts total;       // since this node first counted the tenant (tracked_s ago)
    counts last_minute; // over window_s (up to 60 s)
    std::int64_t window_s = 0;
    std::int64_t tracked_s = 0;
  };

  explicit tenant_traffic(std::size_t max_tenants_per_shard = 4096) : max_(max_tenants_per_shard) {}

  /// One answer of `status` (with its problem type) to a call by `tenant`.
  void count(const std::string& tenant, int status, std::string_view problem_type, clock::time_point now);
  /// The tenant's counts as of `now`; nullopt if this node counted none.
  [[nodiscard]] std::optional<view> of(const std::string& tenant, clock::time_point now) const;
  /// Calls not counted because every shard was full of busy tenants.
  [[nodiscard]] std::uint64_t untracked() const;

private:
  static constexpr std::size_t buckets = 6;
  static constexpr std::int64_t bucket_s = 10;
  struct minute {
    std::int64_t index = -1; // the bucket's start, in bucket_s since the clock's epoch
    std::uint32_t n[5]{};
  };
  struct entry {
    counts total;
    std::array<minute, buckets> ring{};
    std::int64_t first_s = 0, last_s = 0;
  };
  struct shard {
    std::mutex mu;
    std::unordered_map<std::string, entry> tenants;
    std::uint64_t untracked = 0;
  };
  mutable std::array<shard, 16> shards_;
  std::size_t max_;
};

} // namespace colony::adapters::http
