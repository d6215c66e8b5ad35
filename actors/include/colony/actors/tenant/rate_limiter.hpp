// The buckets that enforce the rate policy (quota_policy.hpp): token buckets
// by key (a tenant, a credential), thread-safe. A bucket holds
// at most `burst` tokens and refills at `rate` per second; each request takes
// one. Memory is bounded: buckets that have refilled completely carry no
// information and are dropped when a shard grows past its bound.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace colony::actors {

class rate_limiter {
public:
  using clock = std::chrono::steady_clock;

  struct result {
    bool allowed = true;
    std::int64_t remaining = 0;     // whole tokens left after this request
    std::int64_t reset_s = 0;       // seconds until the bucket is full again
    std::int64_t retry_after_s = 0; // when refused: seconds until one token is there
  };

  explicit rate_limiter(std::size_t max_keys_per_shard = 16'384) : max_keys_(max_keys_per_shard) {}

  /// Takes one token from the bucket `key` (created full).
  result take(std::string_view key, double rate, double burst, clock::time_point now);
  /// Returns the token a take() of `key` got (the request was refused by
  /// another bucket, so it costs this one nothing).
  void give_back(std::string_view key);

  struct level {
    double tokens = 0; // as of `now`, refilled
    double rate = 0;   // as of its last use
    double burst = 0;
  };
  /// The bucket `key` as of `now`, without taking or creating one; nullopt:
  /// no bucket (never used, or forgotten full), so it is full.
  [[nodiscard]] std::optional<level> peek(std::string_view key, clock::time_point now);

private:
  struct bucket {
    double tokens;
    clock::time_point last;
    double rate; // as of its last use: the sweep refills each bucket at its own rate
    double burst;
  };
  struct shard {
    std::mutex mu;
    std::unordered_map<std::string, bucket> buckets;
  };
  static constexpr std::size_t shards = 16;
  std::array<shard, shards> shards_;
  std::size_t max_keys_;
};

} // namespace colony::actors
