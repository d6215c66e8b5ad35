// `colonyctl events tail`: the committed events as they happen, from a node's
// console stream (GET /v1/admin/stream?events=1, server-sent events): the
// latest ones first, then each new one; filtered by tenant and type on the
// node. One line per event (a table row, or the event's JSON with -o json).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "client.hpp"

namespace colony::ctl {

/// Splits a text/event-stream body into events (the WHATWG rules Colony's
/// stream uses: `event:`, `id:`, `data:` lines, a blank line ends one,
/// `:` lines are comments). Pieces may cut lines anywhere.
class sse_reader {
public:
  using on_event = std::function<bool(const std::string& name, const std::string& id, const std::string& data)>;
  explicit sse_reader(on_event f) : f_(std::move(f)) {}
  /// False once the callback said stop.
  bool feed(std::string_view piece);

private:
  bool line(std::string_view l);
  on_event f_;
  std::string partial_, name_, id_, data_;
};

struct tail_options {
  std::string tenant;      // id; empty: every tenant
  std::string type;        // e.g. user.created; empty: every type
  std::int64_t count = 0;  // stop after this many events; 0: until the stream ends or ^C
  std::int64_t after = -1; // resume after this feed position; -1: the latest events, then the new ones
  bool json = false;
};

/// Returns the exit code: 0 after `count` events; 1 if the stream could not
/// be opened or ended (the node went away); 4 if the tenant does not exist.
int run_events_tail(const client& cl, const tail_options& o);

} // namespace colony::ctl
