#include "colony/runtime/entity_registry.hpp"
#include "colony/runtime/introspection.hpp"

#include "colony/actors/kinds.hpp"

#include <algorithm>
#include <bit>
#include <map>
#include <array>
#include <deque>
#include <chrono>
#include <atomic>
#include <caf/all.hpp>
#include <functional>
#include <mutex>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "colony/runtime/log.hpp"
#include "handled_cells.hpp"

namespace colony::runtime {
namespace {

using actors::entity_key;
using actors::entity_kind;

using clock = std::chrono::steady_clock;

struct slot {
  caf::actor actor;
  std::uint64_t forwarded = 0; // commands handed out for this activation
  clock::time_point last_routed;
  std::uint32_t cell = detail::handled_cells::none; // where the activation mirrors its handled count
};

/// A directory key without a heap allocation: kind plus the two UUIDs as 16
/// bytes each (the ids the API and the store hand out are lower-case
/// canonical UUIDs). Anything else keeps its text form in a side map, so the
/// directory stays exact for any id. Saves ~100 bytes per live entity.
struct packed {
  std::array<std::uint8_t, 33> b{};
  bool operator==(const packed&) const = default;
};

struct packed_hash {
  std::size_t operator()(const packed& p) const {
    return std::hash<std::string_view>{}(std::string_view(reinterpret_cast<const char*>(p.b.data()), p.b.size()));
  }
};

bool pack_uuid(const std::string& s, std::uint8_t* out) {
  if (s.size() != 36)
    return false;
  int n = 0;
  for (std::size_t i = 0; i < 36; ++i) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-')
        return false;
      continue;
    }
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0)
      return false;
    if (n % 2 == 0)
      out[n / 2] = static_cast<std::uint8_t>(v << 4);
    else
      out[n / 2] |= static_cast<std::uint8_t>(v);
    ++n;
  }
  return true;
}

std::string unpack_uuid(const std::uint8_t* in) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      s.push_back('-');
    s.push_back(digits[in[i] >> 4]);
    s.push_back(digits[in[i] & 15]);
  }
  return s;
}

struct name {
  std::optional<packed> p;
  std::string text; // when the ids are not canonical UUIDs

  explicit name(const entity_key& k) {
    packed x;
    x.b[0] = static_cast<std::uint8_t>(k.kind);
    if (pack_uuid(k.tenant_id, x.b.data() + 1) && pack_uuid(k.id, x.b.data() + 17))
      p = x;
    else
      text = k.str();
  }
  std::size_t hash() const { return p ? packed_hash{}(*p) : std::hash<std::string>{}(text); }
};

struct shard {
  std::mutex mu;
  std::unordered_map<packed, slot, packed_hash> live;
  std::unordered_map<std::string, slot> odd;

  slot* find(const name& n) {
    if (n.p) {
      auto it = live.find(*n.p);
      return it == live.end() ? nullptr : &it->second;
    }
    auto it = odd.find(n.text);
    return it == odd.end() ? nullptr : &it->second;
  }
  void erase(const name& n) {
    if (n.p)
      live.erase(*n.p);
    else
      odd.erase(n.text);
  }
  void emplace(const name& n, slot s) {
    if (n.p)
      live.emplace(*n.p, std::move(s));
    else
      odd.emplace(n.text, std::move(s));
  }
  template <class F>
  void each(F f) {
    for (auto& [_, s] : live)
      f(s);
    for (auto& [_, s] : odd)
      f(s);
  }
  void clear() {
    live.clear();
    odd.clear();
  }
};

class directory final : public actors::entity_router {
public:
  directory(caf::actor_system& sys, std::shared_ptr<metrics> m, std::shared_ptr<detail::handled_cells> cells)
    : sys_(sys), m_(std::move(m)), cells_(std::move(cells)) {}

  void set_env(std::shared_ptr<const actors::entity_env> env) { env_ = std::move(env); }

  using actors::entity_router::route;

  caf::actor route(const entity_key& key, bool known_new) override {
    name n{key};
    auto& sh = shard_of(n);
    caf::actor fresh;
    {
      std::lock_guard lock{sh.mu};
      if (stopped_.load(std::memory_order_relaxed))
        return {};
      if (auto* s = sh.find(n)) {
        ++s->forwarded;
        s->last_routed = clock::now();
        sample(*s);
        return s->actor;
      }
      const auto* kind = actors::builtin_kinds().find(key.kind);
      if (kind == nullptr)
        return {}; // no such kind on this node: the caller answers "unavailable"
      auto cell = cells_->acquire(key.kind);
      fresh = kind->spawn(sys_, key, env_, actors::activation{known_new, cells_->at(cell)});
      slot s{fresh, 1, clock::now(), cell};
      sample(s);
      sh.emplace(n, std::move(s));
    }
    ++stats_.activations;
    ++per_kind(stats_.kind_activations, key.kind);
    count_live(key.kind, +1);
    if (m_)
      m_->entity_activated(key.kind);
    return fresh;
  }

  bool release(const entity_key& key, const caf::actor_addr& who, std::uint64_t handled) override {
    name n{key};
    auto& sh = shard_of(n);
    {
      std::lock_guard lock{sh.mu};
      auto* s = sh.find(n);
      if (s == nullptr || s->actor.address() != who)
        return true; // not (or no longer) in the directory: nothing can reach it
      if (s->forwarded != handled)
        return false; // commands are on their way to it: stay active
      cells_->release(s->cell);
      sh.erase(n);
    }
    ++stats_.passivations;
    ++per_kind(stats_.kind_passivations, key.kind);
    count_live(key.kind, -1);
    remember_end(n.p, n.text, lifecycle_event::passivated);
    if (m_)
      m_->entity_passivated(key.kind);
    return true;
  }

  registry_stats stats() const {
    registry_stats s;
    s.live_tenants = stats_.live[static_cast<std::size_t>(entity_kind::tenant)].load();
    s.live_users = stats_.live[static_cast<std::size_t>(entity_kind::user)].load();
    s.activations = stats_.activations.load();
    s.passivations = stats_.passivations.load();
    s.crashes = stats_.crashes.load();
    return s;
  }

  /// Asks every activation that nothing was routed to for `idle` to go
  /// (idle_atom; it answers with release()). One sweep for all entities
  /// instead of a timer per entity: no clock entry per actor (memory) and no
  /// re-arming per message (CPU), at the price of passivating up to one
  /// sweep period late.
  void sweep(clock::duration idle) {
    auto cutoff = clock::now() - idle;
    std::vector<caf::actor> stale;
    for (auto& sh : shards_) {
      std::lock_guard lock{sh.mu};
      sh.each([&](slot& s) {
        if (s.last_routed <= cutoff)
          stale.push_back(s.actor);
      });
    }
    for (auto& a : stale)
      caf::anon_send(a, actors::idle_atom::value);
  }

  void crashed(const entity_key& key, const caf::actor_addr& who, const std::string& reason) override {
    name n{key};
    auto& sh = shard_of(n);
    {
      std::lock_guard lock{sh.mu};
      auto* s = sh.find(n);
      if (s == nullptr || s->actor.address() != who)
        return;
      cells_->release(s->cell);
      sh.erase(n);
    }
    count_live(key.kind, -1);
    ++stats_.crashes;
    ++per_kind(stats_.kind_crashes, key.kind);
    remember_crash(key, reason);
    if (m_)
      m_->entity_crashed(key.kind);
    log::error("entity crashed; it will be re-activated by its next message",
               {{"entity", key.str()}, {"reason", reason}});
  }

  void stray_error(const entity_key& key, const std::string& error) override {
    log::warn("entity: error message nobody waited for, ignored", {{"entity", key.str()}, {"error", error}});
  }

  /// Forgets, and ends, every activation whose tenant id `pred` accepts:
  /// the cluster's shards that moved away or came back, whose in-memory state
  /// may be stale. The next command activates afresh where it belongs.
  std::size_t evict_where(const std::function<bool(const std::string&)>& pred) {
    std::vector<std::pair<entity_kind, caf::actor>> gone;
    for (auto& sh : shards_) {
      std::lock_guard lock{sh.mu};
      for (auto it = sh.live.begin(); it != sh.live.end();) {
        if (pred(unpack_uuid(it->first.b.data() + 1))) {
          gone.emplace_back(static_cast<entity_kind>(it->first.b[0]), std::move(it->second.actor));
          remember_end(it->first, {}, lifecycle_event::evicted);
          cells_->release(it->second.cell);
          it = sh.live.erase(it);
        } else {
          ++it;
        }
      }
      for (auto it = sh.odd.begin(); it != sh.odd.end();) {
        auto [kind, tenant] = split_text_key(it->first);
        if (pred(tenant)) {
          gone.emplace_back(kind, std::move(it->second.actor));
          remember_end(std::nullopt, it->first, lifecycle_event::evicted);
          cells_->release(it->second.cell);
          it = sh.odd.erase(it);
        } else {
          ++it;
        }
      }
    }
    // Out of the directory, nothing new reaches them; idle_atom ends each
    // after what is in its mailbox (a commit in flight first: its client gets
    // its answer, or "moved" from the fence), since release() finds it gone.
    for (auto& [kind, a] : gone) {
      ++stats_.passivations;
      ++per_kind(stats_.kind_passivations, kind);
      count_live(kind, -1);
      if (m_)
        m_->entity_passivated(kind);
      caf::anon_send(a, actors::idle_atom::value);
    }
    return gone.size();
  }

  census take_census(std::size_t limit) const {
    census c;
    for (const auto& k : actors::builtin_kinds().all()) {
      auto i = static_cast<std::size_t>(k.kind) % actors::max_kinds;
      c.kinds.push_back({k.kind, stats_.live[i].load(), stats_.kind_activations[i].load(),
                         stats_.kind_passivations[i].load(), stats_.kind_crashes[i].load()});
    }
    // Tenants by their packed ids (16 bytes), counted shard by shard; the
    // few keys kept as text by their tenant id; merged by id at the end.
    std::unordered_map<std::string, tenant_live> packed_ids, text_ids;
    for (auto& sh : shards_) {
      std::lock_guard lock{sh.mu};
      for (const auto& [k, _] : sh.live) {
        auto& t = packed_ids[std::string(reinterpret_cast<const char*>(k.b.data() + 1), 16)];
        ++t.total;
        ++t.by_kind[k.b[0] % actors::max_kinds];
      }
      for (const auto& [text, _] : sh.odd) {
        auto [kind, tenant] = split_text_key(text);
        auto& t = text_ids[tenant];
        ++t.total;
        ++t.by_kind[static_cast<std::size_t>(kind) % actors::max_kinds];
      }
    }
    for (auto& [bytes, t] : packed_ids) {
      auto& into = text_ids[unpack_uuid(reinterpret_cast<const std::uint8_t*>(bytes.data()))];
      into.total += t.total;
      for (std::size_t i = 0; i < actors::max_kinds; ++i)
        into.by_kind[i] += t.by_kind[i];
    }
    c.tenants_live = static_cast<std::int64_t>(text_ids.size());
    std::vector<tenant_live> all;
    all.reserve(text_ids.size());
    for (auto& [id, t] : text_ids) {
      t.tenant_id = id;
      all.push_back(std::move(t));
    }
    auto n = std::min(limit, all.size());
    std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n), all.end(),
                      [](const tenant_live& a, const tenant_live& b) {
                        return a.total != b.total ? a.total > b.total : a.tenant_id < b.tenant_id;
                      });
    all.resize(n);
    c.top_tenants = std::move(all);
    return c;
  }

  tenant_live tenant_census(const std::string& tenant_id) const {
    tenant_live t;
    t.tenant_id = tenant_id;
    std::uint8_t want[16];
    bool packed_id = pack_uuid(tenant_id, want);
    for (auto& sh : shards_) {
      std::lock_guard lock{sh.mu};
      if (packed_id)
        for (const auto& [k, _] : sh.live)
          if (std::equal(want, want + 16, k.b.data() + 1)) {
            ++t.total;
            ++t.by_kind[k.b[0] % actors::max_kinds];
          }
      for (const auto& [text, _] : sh.odd) {
        auto [kind, tenant] = split_text_key(text);
        if (tenant == tenant_id) {
          ++t.total;
          ++t.by_kind[static_cast<std::size_t>(kind) % actors::max_kinds];
        }
      }
    }
    return t;
  }

  std::optional<entity_probe> probe(const entity_key& key) const {
    name n{key};
    auto& sh = shard_of(n);
    std::lock_guard lock{sh.mu};
    const auto* s = sh.find(n);
    if (s == nullptr)
      return std::nullopt;
    const auto* c = cells_->at(s->cell);
    return entity_probe{
      s->forwarded, std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - s->last_routed).count(),
      depth(*s), c != nullptr ? c->last_ops.load(std::memory_order_relaxed) : 0, c != nullptr ? c->activated_ms : 0};
  }

  caf::actor activation(const entity_key& key) const {
    name n{key};
    auto& sh = shard_of(n);
    std::lock_guard lock{sh.mu};
    const auto* s = sh.find(n);
    return s == nullptr ? caf::actor{} : s->actor;
  }

  mailbox_census take_mailboxes(std::size_t limit) const;

  std::vector<crash_record> recent_crashes() const {
    std::lock_guard lock{crash_mu_};
    return {crashes_.rbegin(), crashes_.rend()};
  }

  /// The ends of `key`'s activations still in the rings, newest first.
  std::vector<lifecycle_event> lifecycle(const entity_key& key) const {
    name n{key};
    std::vector<lifecycle_event> out;
    {
      std::lock_guard lock{end_mu_};
      auto kept = std::min(ends_written_, ends_.size());
      for (std::size_t i = 0; i < kept; ++i) {
        const auto& e = ends_[(ends_written_ - 1 - i) % ends_.size()];
        if (n.p ? e.p && *e.p == *n.p : !e.p && e.text == n.text)
          out.push_back({e.what, {}, e.at_ms});
      }
    }
    for (const auto& r : recent_crashes())
      if (r.kind == key.kind && r.tenant_id == key.tenant_id && r.id == key.id)
        out.push_back({lifecycle_event::crashed, r.reason, r.at_ms});
    std::stable_sort(out.begin(), out.end(),
                     [](const lifecycle_event& a, const lifecycle_event& b) { return a.at_ms > b.at_ms; });
    return out;
  }

  /// Node shutdown: every commit has been answered, so entities can go.
  void stop_all() {
    stopped_ = true;
    std::vector<caf::actor> all;
    for (auto& sh : shards_) {
      std::lock_guard lock{sh.mu};
      sh.each([&](slot& s) { all.push_back(std::move(s.actor)); });
      sh.clear();
    }
    for (auto& a : all)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }

private:
  static constexpr std::size_t shard_count = 32;

  shard& shard_of(const name& n) const { return shards_[n.hash() % shard_count]; }

  /// Commands routed to the activation that it has not handled yet.
  std::uint64_t depth(const slot& s) const {
    const auto* c = cells_->at(s.cell);
    auto handled = c != nullptr ? c->handled.load(std::memory_order_relaxed) : s.forwarded;
    return s.forwarded > handled ? s.forwarded - handled : 0;
  }

  /// Makes the command just routed to `s` the one whose queueing time its
  /// activation measures, unless one is outstanding (not handled yet) or the
  /// last was sampled less than 1 ms ago: at most a thousand samples a second
  /// per activation, and a command stuck behind a slow one is still timed.
  void sample(const slot& s) const {
    auto* c = cells_->at(s.cell);
    if (c == nullptr || c->sample_seq.load(std::memory_order_relaxed) > c->handled.load(std::memory_order_relaxed))
      return;
    auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(s.last_routed.time_since_epoch()).count();
    if (now - c->sample_at_ns.load(std::memory_order_relaxed) < 1'000'000)
      return;
    c->sample_at_ns.store(now, std::memory_order_relaxed);
    c->sample_seq.store(s.forwarded, std::memory_order_release);
  }

  static std::atomic<std::int64_t>& per_kind(std::array<std::atomic<std::int64_t>, actors::max_kinds>& a,
                                             entity_kind kind) {
    return a[static_cast<std::size_t>(kind) % actors::max_kinds];
  }

  /// "kind/<tenant id>/<id>" (entity_key::str()) → (kind, tenant id).
  static std::pair<entity_kind, std::string> split_text_key(const std::string& text) {
    auto first = text.find('/');
    auto second = first == std::string::npos ? first : text.find('/', first + 1);
    auto tenant = second == std::string::npos ? std::string{} : text.substr(first + 1, second - first - 1);
    return {text.starts_with("tenant/") ? entity_kind::tenant : entity_kind::user, std::move(tenant)};
  }

  static std::int64_t wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
  }

  void remember_crash(const entity_key& key, const std::string& reason) {
    auto now = wall_ms();
    std::lock_guard lock{crash_mu_};
    if (crashes_.size() == crash_ring)
      crashes_.pop_front();
    crashes_.push_back({key.kind, key.tenant_id, key.id, reason.substr(0, 512), now});
  }

  /// One more activation ended without a crash, into the ring (a packed
  /// key copies no string; a slot's text keeps its capacity for the next).
  void remember_end(const std::optional<packed>& p, const std::string& text, lifecycle_event::what_t what) {
    auto now = wall_ms();
    std::lock_guard lock{end_mu_};
    auto& e = ends_[ends_written_++ % ends_.size()];
    e.p = p;
    if (p)
      e.text.clear();
    else
      e.text = text;
    e.what = what;
    e.at_ms = now;
  }

  void count_live(entity_kind kind, int delta) {
    auto& n = stats_.live[static_cast<std::size_t>(kind) % actors::max_kinds];
    auto now = n.fetch_add(delta) + delta;
    if (m_)
      m_->live_entities(kind, now);
  }

  struct counters {
    std::array<std::atomic<std::int64_t>, actors::max_kinds> live{}; // by kind id
    std::atomic<std::int64_t> activations{0}, passivations{0}, crashes{0};
    std::array<std::atomic<std::int64_t>, actors::max_kinds> kind_activations{}, kind_passivations{}, kind_crashes{};
  };

  caf::actor_system& sys_;
  std::shared_ptr<metrics> m_;
  std::shared_ptr<detail::handled_cells> cells_;
  // The previous mailbox census's deepest (key → depth), for "growing".
  mutable std::mutex window_mu_;
  mutable std::unordered_map<std::string, std::uint64_t> window_;
  mutable clock::time_point window_at_{};
  mutable std::array<std::array<std::uint64_t, actors::wait_histogram::n>, actors::max_kinds> window_waits_{};
  std::shared_ptr<const actors::entity_env> env_;
  mutable std::array<shard, shard_count> shards_;
  counters stats_;
  mutable std::mutex crash_mu_;
  std::deque<crash_record> crashes_; // the last crash_ring, oldest first
  struct ended {
    std::optional<packed> p;
    std::string text; // the key's text when it is not packed
    lifecycle_event::what_t what = lifecycle_event::passivated;
    std::int64_t at_ms = 0;
  };
  mutable std::mutex end_mu_;
  std::array<ended, end_ring> ends_{}; // the last end_ring passivations and evictions, a ring
  std::size_t ends_written_ = 0;
  std::atomic<bool> stopped_{false};
};

/// One walk of the directory, one shard lock at a time: per kind a count of
/// activations by depth bucket, and a bounded heap of the deepest.
mailbox_census directory::take_mailboxes(std::size_t limit) const {
  struct candidate {
    std::uint64_t depth = 0, routed = 0;
    clock::time_point last;
    entity_kind kind{};
    std::string text; // the key as text (odd keys)
    packed p{};       // or packed
    bool is_packed = false;
  };
  auto deeper = [](const candidate& a, const candidate& b) { return a.depth > b.depth; }; // a min-heap on depth
  std::vector<candidate> heap;
  std::array<std::map<std::uint64_t, std::int64_t>, actors::max_kinds> buckets;
  std::array<mailbox_kind, actors::max_kinds> per{};
  auto bound = [](std::uint64_t d) -> std::uint64_t { return d == 0 ? 0 : std::bit_ceil(d); };
  auto consider = [&](entity_kind kind, const slot& s, auto&& fill) {
    auto d = depth(s);
    auto& k = per[static_cast<std::size_t>(kind) % actors::max_kinds];
    ++k.live;
    ++buckets[static_cast<std::size_t>(kind) % actors::max_kinds][bound(d)];
    if (d == 0)
      return;
    ++k.non_empty;
    k.queued += static_cast<std::int64_t>(d);
    k.max = std::max(k.max, d);
    if (limit == 0 || (heap.size() == limit && heap.front().depth >= d))
      return;
    candidate c;
    c.depth = d;
    c.routed = s.forwarded;
    c.last = s.last_routed;
    c.kind = kind;
    fill(c);
    if (heap.size() == limit) {
      std::pop_heap(heap.begin(), heap.end(), deeper);
      heap.pop_back();
    }
    heap.push_back(std::move(c));
    std::push_heap(heap.begin(), heap.end(), deeper);
  };
  for (auto& sh : shards_) {
    std::lock_guard lock{sh.mu};
    // Entries, not structured bindings: clang 14 does not let a lambda capture those.
    for (const auto& e : sh.live)
      consider(static_cast<entity_kind>(e.first.b[0]), e.second, [&e](candidate& c) {
        c.p = e.first;
        c.is_packed = true;
      });
    for (const auto& e : sh.odd)
      consider(split_text_key(e.first).first, e.second, [&e](candidate& c) { c.text = e.first; });
  }
  mailbox_census out;
  std::lock_guard lock{window_mu_};
  for (const auto& k : actors::builtin_kinds().all()) {
    auto i = static_cast<std::size_t>(k.kind) % actors::max_kinds;
    auto m = per[i];
    m.kind = k.kind;
    m.buckets.assign(buckets[i].begin(), buckets[i].end());
    const auto& w = cells_->waits(k.kind);
    m.waits.resize(actors::wait_histogram::n);
    m.waits_window.resize(actors::wait_histogram::n);
    for (std::size_t b = 0; b < actors::wait_histogram::n; ++b) {
      m.waits[b] = w.buckets[b].load(std::memory_order_relaxed);
      if (window_at_ != clock::time_point{})
        m.waits_window[b] = m.waits[b] - std::min(m.waits[b], window_waits_[i][b]);
    }
    out.kinds.push_back(std::move(m));
  }
  std::sort(heap.begin(), heap.end(), deeper);
  auto now = clock::now();
  std::unordered_map<std::string, std::uint64_t> seen;
  for (auto& c : heap) {
    deep_mailbox d;
    d.kind = c.kind;
    if (c.is_packed) {
      d.tenant_id = unpack_uuid(c.p.b.data() + 1);
      d.id = unpack_uuid(c.p.b.data() + 17);
    } else {
      auto first = c.text.find('/');
      auto second = c.text.find('/', first + 1);
      d.tenant_id = c.text.substr(first + 1, second - first - 1);
      d.id = c.text.substr(second + 1);
    }
    d.depth = c.depth;
    d.routed = c.routed;
    d.idle_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - c.last).count();
    auto key = std::to_string(static_cast<int>(d.kind)) + "/" + d.tenant_id + "/" + d.id;
    if (window_at_ != clock::time_point{}) {
      auto it = window_.find(key);
      if (it != window_.end())
        d.depth_before = it->second;
      d.growing = d.depth > d.depth_before.value_or(0);
    }
    seen.emplace(std::move(key), d.depth);
    out.deepest.push_back(std::move(d));
  }
  if (window_at_ != clock::time_point{})
    out.window_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - window_at_).count();
  // A new window once the last is a second old: callers a second apart (the
  // console's sampler, colonyctl top) each compare with the one before.
  if (window_at_ == clock::time_point{} || now - window_at_ >= std::chrono::seconds(1)) {
    window_ = std::move(seen);
    window_at_ = now;
    for (const auto& m : out.kinds)
      std::copy(m.waits.begin(), m.waits.end(),
                window_waits_[static_cast<std::size_t>(m.kind) % actors::max_kinds].begin());
  }
  return out;
}

struct registry_state {
  std::shared_ptr<directory> dir;
  static inline const char* name = "colony.registry";
};

caf::behavior registry(caf::stateful_actor<registry_state>* self, std::shared_ptr<directory> dir,
                       std::chrono::milliseconds idle) {
  self->state.dir = std::move(dir);
  // Sweep four times per idle period: an entity goes between 1 and 1.25
  // idle periods after its last command.
  auto period = std::max(std::chrono::milliseconds(10), idle / 4);
  self->delayed_send(self, period, actors::tick_atom::value);
  return {
    [self, idle, period](actors::tick_atom) {
      self->state.dir->sweep(idle);
      self->delayed_send(self, period, actors::tick_atom::value);
    },
    [self](entity_key& key, actors::command& cmd) -> caf::result<actors::entity_reply> {
      auto target = self->state.dir->route(key);
      if (!target)
        return actors::entity_reply::fail(actors::fail(actors::errc::unavailable, "the node is shutting down"));
      self->delegate(target, std::move(cmd));
      return caf::delegated<actors::entity_reply>{};
    },
    [self](actors::stats_atom) { return self->state.dir->stats(); },
    [self](actors::stop_atom) {
      self->state.dir->stop_all();
      self->quit();
    },
  };
}

} // namespace

std::size_t evict_where(const entity_registry& r, const std::function<bool(const std::string&)>& tenant_pred) {
  return static_cast<directory&>(*r.router).evict_where(tenant_pred);
}

namespace {
const directory& dir_of(const std::shared_ptr<actors::entity_router>& r) { return static_cast<const directory&>(*r); }
} // namespace

census local_entities::take_census(std::size_t limit) const { return dir_of(dir_).take_census(limit); }
tenant_live local_entities::tenant_census(const std::string& tenant_id) const {
  return dir_of(dir_).tenant_census(tenant_id);
}
std::vector<crash_record> local_entities::recent_crashes() const { return dir_of(dir_).recent_crashes(); }
std::vector<lifecycle_event> local_entities::lifecycle(const actors::entity_key& key) const {
  return dir_of(dir_).lifecycle(key);
}
std::optional<entity_probe> local_entities::probe(const actors::entity_key& key) const {
  return dir_of(dir_).probe(key);
}
caf::actor local_entities::activation(const actors::entity_key& key) const { return dir_of(dir_).activation(key); }
mailbox_census local_entities::mailboxes(std::size_t limit) const { return dir_of(dir_).take_mailboxes(limit); }

void stop_entity_registry(const entity_registry& r) {
  // The exits are sent from the caller's thread, not from inside the
  // registry actor: 300,000 exits sent by one actor took 30 s to be
  // processed (a slow tail of ~1,000 actors/s while both workers sat idle
  // in CAF 0.17's work stealing), 1,000,000 took 6.5 minutes; sent from
  // outside, 300,000 end in 2 s (tests/bench, memory figure teardown).
  static_cast<directory&>(*r.router).stop_all();
  caf::anon_send(r.actor, actors::stop_atom::value);
}

entity_registry spawn_entity_registry(caf::actor_system& sys, actors::entity_env env, std::shared_ptr<metrics> m) {
  auto cells = std::make_shared<detail::handled_cells>();
  env.handled_cells = cells;
  auto dir = std::make_shared<directory>(sys, std::move(m), cells);
  env.router = dir;
  auto idle = env.idle_timeout;
  dir->set_env(std::make_shared<const actors::entity_env>(std::move(env)));
  auto actor = sys.spawn(registry, dir, idle);
  return entity_registry{std::move(actor), std::move(dir)};
}

} // namespace colony::runtime
