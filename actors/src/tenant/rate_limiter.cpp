#include "colony/actors/tenant/rate_limiter.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <iterator>

namespace colony::actors {

rate_limiter::result rate_limiter::take(std::string_view key, double rate, double burst, clock::time_point now) {
  auto& s = shards_[std::hash<std::string_view>{}(key) % shards];
  std::lock_guard lock{s.mu};
  auto refill = [&](bucket& b) {
    auto dt = std::chrono::duration<double>(now - b.last).count();
    if (dt > 0) {
      b.tokens = std::min(b.burst, b.tokens + dt * b.rate);
      b.last = now;
    }
  };
  auto it = s.buckets.find(std::string{key});
  if (it == s.buckets.end()) {
    if (s.buckets.size() >= max_keys_) {
      // Full buckets are indistinguishable from new ones: forget them.
      for (auto i = s.buckets.begin(); i != s.buckets.end();) {
        refill(i->second);
        i = i->second.tokens >= i->second.burst ? s.buckets.erase(i) : std::next(i);
      }
      if (s.buckets.size() >= max_keys_)
        s.buckets.clear(); // every key busy at once: rather forget than grow
    }
    it = s.buckets.emplace(std::string{key}, bucket{burst, now, rate, burst}).first;
  }
  auto& b = it->second;
  b.rate = rate; // a plan change applies from now on
  b.burst = burst;
  refill(b);
  result r;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    r.allowed = true;
  } else {
    r.allowed = false;
    r.retry_after_s = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil((1.0 - b.tokens) / rate)));
  }
  r.remaining = static_cast<std::int64_t>(std::floor(b.tokens));
  r.reset_s = static_cast<std::int64_t>(std::ceil((burst - b.tokens) / rate));
  return r;
}

void rate_limiter::give_back(std::string_view key) {
  auto& s = shards_[std::hash<std::string_view>{}(key) % shards];
  std::lock_guard lock{s.mu};
  if (auto it = s.buckets.find(std::string{key}); it != s.buckets.end())
    it->second.tokens = std::min(it->second.burst, it->second.tokens + 1.0);
}

std::optional<rate_limiter::level> rate_limiter::peek(std::string_view key, clock::time_point now) {
  auto& s = shards_[std::hash<std::string_view>{}(key) % shards];
  std::lock_guard lock{s.mu};
  auto it = s.buckets.find(std::string{key});
  if (it == s.buckets.end())
    return std::nullopt;
  const auto& b = it->second;
  auto dt = std::max(0.0, std::chrono::duration<double>(now - b.last).count());
  return level{std::min(b.burst, b.tokens + dt * b.rate), b.rate, b.burst};
}

} // namespace colony::actors
