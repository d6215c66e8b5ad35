#include "tenant_traffic.hpp"

#include <algorithm>
#include <functional>

namespace colony::adapters::http {

namespace {

std::int64_t seconds(tenant_traffic::clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

} // namespace

void tenant_traffic::count(const std::string& tenant, int status, std::string_view problem_type,
                           clock::time_point now) {
  if (tenant.empty())
    return;
  // Which of counts' fields, after requests: 0 none, 1 client, 2 server, 3 rate, 4 quota.
  int outcome = 0;
  if (status == 429)
    outcome = problem_type == "quota-exceeded" ? 4 : 3;
  else if (status >= 500)
    outcome = 2;
  else if (status >= 400)
    outcome = 1;
  auto s_now = seconds(now);
  auto& sh = shards_[std::hash<std::string>{}(tenant) % shards_.size()];
  std::lock_guard lock{sh.mu};
  auto it = sh.tenants.find(tenant);
  if (it == sh.tenants.end()) {
    if (sh.tenants.size() >= max_)
      std::erase_if(sh.tenants, [&](const auto& e) {
        return s_now - e.second.last_s >= static_cast<std::int64_t>(buckets) * bucket_s;
      });
    if (sh.tenants.size() >= max_) {
      ++sh.untracked;
      return;
    }
    it = sh.tenants.emplace(tenant, entry{}).first;
    it->second.first_s = s_now;
  }
  auto& e = it->second;
  e.last_s = s_now;
  auto index = s_now / bucket_s;
  auto& m = e.ring[static_cast<std::size_t>(index % buckets)];
  if (m.index != index)
    m = minute{index, {}};
  ++m.n[0];
  ++e.total.requests;
  if (outcome > 0) {
    ++m.n[outcome];
    std::uint64_t* fields[] = {&e.total.client_errors, &e.total.server_errors, &e.total.rate_limited,
                               &e.total.quota_exceeded};
    ++*fields[outcome - 1];
  }
}

std::optional<tenant_traffic::view> tenant_traffic::of(const std::string& tenant, clock::time_point now) const {
  auto s_now = seconds(now);
  auto& sh = shards_[std::hash<std::string>{}(tenant) % shards_.size()];
  std::lock_guard lock{sh.mu};
  auto it = sh.tenants.find(tenant);
  if (it == sh.tenants.end())
    return std::nullopt;
  const auto& e = it->second;
  view v;
  v.total = e.total;
  auto index = s_now / bucket_s;
  std::uint64_t sum[5]{};
  for (const auto& m : e.ring)
    if (m.index > index - static_cast<std::int64_t>(buckets) && m.index <= index)
      for (int i = 0; i < 5; ++i)
        sum[i] += m.n[i];
  v.last_minute = counts{sum[0], sum[1], sum[2], sum[3], sum[4]};
  // The buckets cover from the oldest one's start to now, or from when the
  // tenant was first counted if that is later.
  auto from = std::max((index - static_cast<std::int64_t>(buckets) + 1) * bucket_s, e.first_s);
  v.window_s = std::max<std::int64_t>(1, s_now - from);
  v.tracked_s = s_now - e.first_s;
  return v;
}

std::uint64_t tenant_traffic::untracked() const {
  std::uint64_t n = 0;
  for (auto& sh : shards_) {
    std::lock_guard lock{sh.mu};
    n += sh.untracked;
  }
  return n;
}

} // namespace colony::adapters::http
