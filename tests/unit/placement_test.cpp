// Placement of tenants on cluster nodes (runtime/cluster.hpp): the shard
// hash is fixed, rendezvous hashing balances and moves only what it must,
// and the vote threshold follows Orleans.
#include <catch.hpp>
#include <map>
#include <set>

#include "colony/runtime/cluster.hpp"

using namespace colony::runtime::cluster;

namespace {
std::vector<std::string> nodes(int n) {
  std::vector<std::string> out;
  for (int i = 1; i <= n; ++i)
    out.push_back("node" + std::to_string(i));
  return out;
}
std::vector<std::string> owners(const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (std::uint32_t s = 0; s < shard_count; ++s)
    out.push_back(names[*hrw_owner(s, names)]);
  return out;
}
} // namespace

TEST_CASE("the shard of a tenant is a fixed function of its id") {
  // Pinned: a change here moves every tenant of every running cluster.
  CHECK(shard_of("01a232fb-4ed4-70d6-b85c-0735358c7d95") == 1347);
  CHECK(shard_of("") == shard_of(""));
  std::map<std::uint32_t, int> hits;
  for (int i = 0; i < 40'960; ++i)
    ++hits[shard_of("tenant-" + std::to_string(i))];
  CHECK(hits.size() > 4000); // nearly every shard used
  for (const auto& [s, n] : hits) {
    CHECK(s < shard_count);
    CHECK(n < 40); // mean 10
  }
}

TEST_CASE("rendezvous hashing spreads shards evenly and is the same on every node") {
  for (int n : {2, 3, 5, 10}) {
    auto names = nodes(n);
    std::map<std::string, int> per;
    for (const auto& o : owners(names))
      ++per[o];
    CHECK(per.size() == static_cast<std::size_t>(n));
    for (const auto& [name, count] : per) {
      INFO(name << " owns " << count << " of " << shard_count << " with " << n << " nodes");
      CHECK(count > static_cast<int>(shard_count) / n * 8 / 10);
      CHECK(count < static_cast<int>(shard_count) / n * 12 / 10);
    }
    auto reversed = names;
    std::reverse(reversed.begin(), reversed.end());
    CHECK(owners(reversed) == owners(names)); // the order of the member list does not matter
  }
  CHECK_FALSE(hrw_owner(0, {}).has_value());
}

TEST_CASE("a join moves only the newcomer's shards, a leave only the leaver's") {
  auto three = owners(nodes(3));
  auto four = owners(nodes(4));
  int moved = 0;
  for (std::uint32_t s = 0; s < shard_count; ++s)
    if (three[s] != four[s]) {
      ++moved;
      CHECK(four[s] == "node4"); // nothing moves between the old members
    }
  CHECK(moved > static_cast<int>(shard_count) / 4 * 8 / 10);
  CHECK(moved < static_cast<int>(shard_count) / 4 * 12 / 10);
  auto without2 = owners({"node1", "node3"});
  for (std::uint32_t s = 0; s < shard_count; ++s)
    if (three[s] != "node2")
      CHECK(without2[s] == three[s]); // a restarted node2 gets exactly its own shards back
}

TEST_CASE("suspicion votes needed to declare a member dead") {
  CHECK(votes_needed(0) == 1);
  CHECK(votes_needed(1) == 1);
  CHECK(votes_needed(2) == 1); // a two-node cluster: the survivor alone
  CHECK(votes_needed(3) == 2);
  CHECK(votes_needed(10) == 2);
}

TEST_CASE("the node name defaults to the host name") {
  CHECK(node_name_of("n7") == "n7");
  CHECK_FALSE(node_name_of("").empty());
}
