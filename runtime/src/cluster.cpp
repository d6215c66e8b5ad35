#include "colony/runtime/cluster.hpp"

#include <algorithm>
#include <unistd.h>

namespace colony::runtime::cluster {

namespace {
std::uint64_t mix(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
} // namespace

std::uint64_t hash64(std::string_view bytes) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return mix(h);
}

std::uint32_t shard_of(std::string_view tenant_id) {
  return static_cast<std::uint32_t>(hash64(tenant_id) % shard_count);
}

std::uint64_t hrw_score(std::uint32_t shard, std::string_view node_name) {
  return mix(hash64(node_name) ^ (static_cast<std::uint64_t>(shard) * 0x9e3779b97f4a7c15ULL));
}

std::optional<std::size_t> hrw_owner(std::uint32_t shard, const std::vector<std::string>& names) {
  std::optional<std::size_t> best;
  std::uint64_t best_score = 0;
  for (std::size_t i = 0; i < names.size(); ++i) {
    auto s = hrw_score(shard, names[i]);
    if (!best || s > best_score || (s == best_score && names[i] < names[*best])) {
      best = i;
      best_score = s;
    }
  }
  return best;
}

std::string node_name_of(const std::string& configured) {
  if (!configured.empty())
    return configured;
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
    return "colony";
  return host;
}

int votes_needed(int active_non_stale) { return std::max(1, std::min(2, (active_non_stale + 1) / 2)); }

} // namespace colony::runtime::cluster
