// What the parts of the cluster module share on one node: the membership
// view and the routing table (shard -> owner), the peers' gateways, and the
// node's own lease clock. Readers take a snapshot (a shared_ptr to an
// immutable table) under a short lock; the membership manager publishes a
// new one after every read of the database.
#pragma once

#include <array>
#include <atomic>
#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "colony/runtime/cluster.hpp"
#include "colony/runtime/config.hpp"
#include "colony/runtime/metrics.hpp"

namespace colony::adapters::cluster {

namespace rc = runtime::cluster;

enum class status : std::int16_t { joining = 1, active = 2, draining = 3, dead = 4 };

[[nodiscard]] const char* to_string(status s);

struct member {
  std::string incarnation;
  std::string node_name;
  std::string address; // cluster address host:port
  std::string host;
  std::uint16_t port = 0;
  std::string http;
  status state = status::joining;
  std::int64_t generation = 0;
  std::int64_t lease_ms = 0; // lease left by the database clock when read
  std::string dead_reason;
  std::vector<std::string> voters; // incarnations whose suspicion votes are fresh
};

/// One read of the database: members, the version, the shard table.
struct routing {
  std::int64_t version = 0;
  std::vector<member> members;                       // live members first, then recently dead ones
  std::array<std::int16_t, rc::shard_count> owner{}; // index into members; -1: unowned or owner unknown
  std::array<std::int64_t, rc::shard_count> epoch{};
  int self = -1; // index of this incarnation in members

  [[nodiscard]] const member* find(const std::string& incarnation) const;
  [[nodiscard]] bool owned_here(std::uint32_t shard) const { return self >= 0 && owner[shard] == self; }

  /// Where the placement rule (HRW over the active members with a lease)
  /// puts the shards: a count per member (indexed as `members`), and how
  /// many are not there yet (on another member, or unowned).
  struct targets {
    std::vector<std::int64_t> per_member;
    std::int64_t moving = 0;
    std::int64_t unowned = 0;
  };
  [[nodiscard]] targets placement_targets() const;
};

struct self_info {
  std::string cluster;
  std::string node_name;
  std::string incarnation;
  std::string advertise; // host:port
  std::string http;
  std::int64_t generation = 0;
  std::string secrets_key_id; // of the secrets-key webhook secrets are sealed under (empty: none)
};

/// A connected peer: its gateway and the requests in flight to it.
struct peer_link {
  caf::actor gateway;
  std::shared_ptr<std::atomic<int>> in_flight = std::make_shared<std::atomic<int>>(0);
};

class shared_state {
public:
  shared_state(self_info me, const runtime::node_config& cfg, std::shared_ptr<runtime::metrics> m)
    : me_(std::move(me)), cfg_(cfg), metrics_(std::move(m)) {
    auto empty = std::make_shared<routing>();
    empty->owner.fill(-1);
    routing_ = std::move(empty);
  }

  [[nodiscard]] const self_info& me() const { return me_; }
  [[nodiscard]] const runtime::node_config& cfg() const { return cfg_; }
  [[nodiscard]] runtime::metrics* metrics() const { return metrics_.get(); }

  [[nodiscard]] std::shared_ptr<const routing> table() const {
    std::lock_guard lock{mu_};
    return routing_;
  }
  void publish(std::shared_ptr<const routing> r) {
    std::lock_guard lock{mu_};
    routing_ = std::move(r);
  }
  /// A MOVED answer named a newer owner than the table: patch the entry.
  void patch(std::uint32_t shard, const std::string& owner_incarnation, std::int64_t epoch);

  [[nodiscard]] std::optional<peer_link> link(const std::string& incarnation) const {
    std::lock_guard lock{mu_};
    auto it = links_.find(incarnation);
    if (it == links_.end())
      return std::nullopt;
    return it->second;
  }
  void set_link(const std::string& incarnation, std::optional<peer_link> l) {
    std::lock_guard lock{mu_};
    if (l)
      links_[incarnation] = std::move(*l);
    else
      links_.erase(incarnation);
  }
  /// Drops every peer handle (at shutdown: no proxy outlives the system).
  void clear_links() {
    std::lock_guard lock{mu_};
    links_.clear();
  }
  [[nodiscard]] bool connected(const std::string& incarnation) const {
    std::lock_guard lock{mu_};
    return links_.contains(incarnation);
  }

  /// Broadcast subscribers (cluster_service::subscribe).
  std::uint64_t subscribe(std::string topic, std::function<void(const std::string&)> fn) {
    std::lock_guard lock{subs_mu_};
    subs_.push_back({++last_sub_, std::move(topic), std::move(fn), nullptr});
    return last_sub_;
  }
  void unsubscribe(std::uint64_t id) {
    std::lock_guard lock{subs_mu_}; // waits for a delivery in progress
    std::erase_if(subs_, [id](const subscriber& s) { return s.id == id; });
  }
  void deliver(const std::string& topic, const std::string& payload) {
    std::lock_guard lock{subs_mu_};
    for (const auto& s : subs_)
      if (s.topic == topic && s.fn)
        s.fn(payload);
  }
  using served_fn = std::function<void(const std::string&, std::function<void(std::string)>)>;
  std::uint64_t serve(std::string topic, served_fn fn) {
    std::lock_guard lock{subs_mu_};
    subs_.push_back({++last_sub_, std::move(topic), nullptr, std::move(fn)});
    return last_sub_;
  }
  /// Runs the handler served for `topic` (false: none).
  bool handle(const std::string& topic, const std::string& payload, std::function<void(std::string)> reply) {
    std::lock_guard lock{subs_mu_};
    for (const auto& s : subs_)
      if (s.topic == topic && s.served) {
        s.served(payload, std::move(reply));
        return true;
      }
    return false;
  }
  /// The gateways of every connected member.
  [[nodiscard]] std::vector<caf::actor> gateways() const {
    std::lock_guard lock{mu_};
    std::vector<caf::actor> out;
    for (const auto& [inc, l] : links_)
      out.push_back(l.gateway);
    return out;
  }

  /// The node's state as it serves: joining until active, then active,
  /// draining after SIGTERM; `fenced` once its lease may have run out.
  std::atomic<status> state{status::joining};
  std::atomic<bool> fenced{false};
  /// The membership manager (nullptr after stop: a strong handle kept
  /// would keep its detached thread, and so the actor system, from ending).
  [[nodiscard]] caf::actor manager() const {
    std::lock_guard lock{mu_};
    return manager_;
  }
  void set_manager(caf::actor m) {
    std::lock_guard lock{mu_};
    manager_ = std::move(m);
  }
  /// steady_clock (ns) when the last successful lease renewal was sent.
  std::atomic<std::int64_t> renewed_sent_ns{0};

  [[nodiscard]] bool serving() const {
    auto s = state.load();
    return !fenced.load() && (s == status::active || s == status::draining || s == status::joining);
  }

private:
  self_info me_;
  const runtime::node_config& cfg_;
  std::shared_ptr<runtime::metrics> metrics_;
  mutable std::mutex mu_;
  std::shared_ptr<const routing> routing_;
  std::unordered_map<std::string, peer_link> links_;
  caf::actor manager_;
  struct subscriber {
    std::uint64_t id;
    std::string topic;
    std::function<void(const std::string&)> fn;
    served_fn served;
  };
  std::mutex subs_mu_;
  std::vector<subscriber> subs_;
  std::uint64_t last_sub_ = 0;
};

[[nodiscard]] inline std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

} // namespace colony::adapters::cluster

// Local messages only (never across nodes).
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<const colony::adapters::cluster::routing>)
