// The web console's server side (docs/console.md): its sign-in sessions, the
// one sampler that feeds every open console stream, and the page itself.
//
// - Sessions: POST /console/session with a platform credential opens one:
//   an HttpOnly, SameSite=Strict cookie holding the credential and the
//   session's expiry sealed (AES-256-GCM) under the node's secrets key, so
//   scripts never see the credential, the browser cannot read or change it,
//   and the session survives a restart and works on every node. A session
//   authenticates GET and HEAD requests only, so a cookie can never change
//   anything. The credential is checked again on every request (a revoked
//   key ends the session at once); a session lasts 8 hours.
// - The hub: GET /v1/admin/stream subscribes a stream. While at least one
//   exists, one sampler thread per node gathers a snapshot every second
//   (nodes, actors, crashes: the same documents as GET /v1/admin/*) and tails
//   the event feed into a bounded ring; the streams share them. With no
//   subscriber the thread sleeps: the console costs nothing unwatched.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "api.hpp"
#include "colony/adapters/secrets.hpp"

namespace colony::adapters::http {

struct api_core;
struct call;

class console_sessions {
public:
  static constexpr const char* cookie_name = "colony_console";
  static constexpr auto lifetime = std::chrono::hours(8);
  static constexpr std::size_t max_credential = 3000; // a cookie holds about 4 KB
  static constexpr std::size_t max_closed = 10'000;

  /// Sessions sealed under `box` (the node's secrets key): stateless, so
  /// they survive a restart and hold on every node of a cluster; without a
  /// box (unit tests), kept in this process only.
  explicit console_sessions(std::shared_ptr<const secret_box> box) : box_(std::move(box)) {}
  /// The cookie value of a new session for `credential`.
  [[nodiscard]] std::string open(const std::string& credential);
  /// The credential of a live session's cookie value.
  [[nodiscard]] std::optional<std::string> credential(std::string_view value);
  /// Signs out: this value stops working here at once (elsewhere its
  /// credential still has to work, and it ends with its lifetime).
  void close(std::string_view value);
  /// The session's value in a Cookie header, if any.
  [[nodiscard]] static std::string value_in(std::string_view cookie_header);

private:
  std::shared_ptr<const secret_box> box_;
  std::mutex mu_;
  std::unordered_map<std::string, std::string> local_; // value → "expiry\ncredential" (no box)
  std::unordered_map<std::string, std::chrono::system_clock::time_point> closed_; // signed-out values → their expiry
};

class console_stream;

class console_hub {
public:
  static constexpr std::size_t ring_capacity = 2000; // events kept for the tails
  static constexpr std::size_t per_pull = 200;       // events one stream sends at most per pull
  static constexpr auto period = std::chrono::seconds(1);

  explicit console_hub(api_core& a) : a_(a) {}
  ~console_hub();
  console_hub(const console_hub&) = delete;
  console_hub& operator=(const console_hub&) = delete;

  struct filter {
    bool snapshots = true;
    bool events = false;
    std::string tenant_id;
    std::string type;
    std::optional<std::int64_t> after; // resume: events after this position
  };
  [[nodiscard]] std::shared_ptr<stream_source> subscribe(filter f);

  /// How many streams are open, and how many samples were taken (tests, metrics).
  [[nodiscard]] std::size_t subscribers() const;
  [[nodiscard]] std::uint64_t samples() const;

private:
  friend class console_stream;
  struct event_item {
    std::uint64_t index = 0; // the hub's own count, for what each stream has seen
    std::int64_t position = 0;
    std::string tenant_id;
    std::string type;
    std::string json; // {"position":…,"event":{…}}
  };

  void run();
  void sample_snapshot();
  void sample_events();
  void leave(console_stream* s);

  api_core& a_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::thread sampler_;
  bool stopping_ = false;
  std::vector<console_stream*> streams_;
  std::uint64_t snapshot_seq_ = 0;
  std::shared_ptr<const std::string> snapshot_;
  std::uint64_t samples_ = 0;
  // The event ring.
  std::deque<event_item> ring_;
  std::uint64_t next_index_ = 0;
  std::optional<std::int64_t> tail_after_; // the feed position read up to; unset: start at the latest
};

/// Serves GET/HEAD /console and /console/...: the page's files, and the page
/// itself for every view's deep link. False if `c` is not for the console.
bool serve_console_page(const std::shared_ptr<call>& c, std::string_view path);

/// The Content-Security-Policy of the console's answers.
inline constexpr const char* console_csp =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
  "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

} // namespace colony::adapters::http
