#include "console.hpp"
#include "console_assets.hpp"
#include "core.hpp"
#include "routes/groups.hpp"

#include <algorithm>
#include <caf/all.hpp>
#include <openssl/rand.h>

#include "colony/protocol/json.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/log.hpp"
#include "colony/v1/event.pb.h"

namespace colony::adapters::http {

using clock = std::chrono::steady_clock;

// -- sessions -----------------------------------------------------------------------

namespace {

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1)
    throw std::runtime_error("no randomness for a console session");
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : raw) {
    out.push_back(hex[b >> 4]);
    out.push_back(hex[b & 15]);
  }
  return out;
}

} // namespace

std::string console_sessions::open(const std::string& credential) {
  auto expires = unix_now() + std::chrono::duration_cast<std::chrono::seconds>(lifetime).count();
  auto plain = std::to_string(expires) + "\n" + credential;
  if (box_)
    return box_->seal(plain);
  auto id = random_hex(32);
  std::lock_guard lock{mu_};
  if (local_.size() >= max_closed)
    local_.clear();
  local_[id] = std::move(plain);
  return id;
}

std::optional<std::string> console_sessions::credential(std::string_view value) {
  if (value.empty())
    return std::nullopt;
  std::optional<std::string> plain;
  {
    std::lock_guard lock{mu_};
    if (closed_.contains(std::string{value}))
      return std::nullopt;
    if (!box_)
      if (auto it = local_.find(std::string{value}); it != local_.end())
        plain = it->second;
  }
  if (box_ && value.starts_with("enc:v1:"))
    plain = box_->open(value);
  if (!plain)
    return std::nullopt;
  auto nl = plain->find('\n');
  auto expires =
    nl == std::string::npos ? std::nullopt : parse_int<std::int64_t>(std::string_view(*plain).substr(0, nl));
  if (!expires || *expires <= unix_now())
    return std::nullopt;
  return plain->substr(nl + 1);
}

void console_sessions::close(std::string_view value) {
  if (value.empty())
    return;
  std::lock_guard lock{mu_};
  local_.erase(std::string{value});
  auto now = std::chrono::system_clock::now();
  if (closed_.size() >= max_closed)
    std::erase_if(closed_, [now](const auto& kv) { return kv.second <= now; });
  if (closed_.size() < max_closed)
    closed_[std::string{value}] = now + lifetime;
}

std::string console_sessions::value_in(std::string_view header) {
  std::string_view want = cookie_name;
  while (!header.empty()) {
    auto semi = header.find(';');
    auto part = header.substr(0, semi);
    header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
    while (!part.empty() && part.front() == ' ')
      part.remove_prefix(1);
    if (part.size() > want.size() && part.starts_with(want) && part[want.size()] == '=') {
      auto v = part.substr(want.size() + 1);
      bool ok = !v.empty() && v.size() <= 4096 && std::all_of(v.begin(), v.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) != 0 || ch == ':' || ch == '-' || ch == '_' || ch == '=';
      });
      if (ok)
        return std::string{v};
    }
  }
  return {};
}

// -- one subscriber's stream ------------------------------------------------------------

class console_stream final : public stream_source {
public:
  console_stream(std::shared_ptr<std::atomic<console_hub*>> hub, console_hub::filter f)
    : hub_(std::move(hub)), f_(std::move(f)), last_sent_(clock::now()) {}
  ~console_stream() override {
    if (auto* hub = hub_->load())
      hub->leave(this);
  }

  std::optional<std::string> pull() override {
    auto* hub = hub_->load();
    if (hub == nullptr)
      return std::nullopt; // the API is going away
    std::string out;
    if (first_) {
      out += "retry: 2000\n: connected\n\n";
      first_ = false;
    }
    {
      std::lock_guard lock{hub->mu_};
      if (f_.snapshots && hub->snapshot_ && hub->snapshot_seq_ > seen_snapshot_) {
        seen_snapshot_ = hub->snapshot_seq_;
        out += "event: snapshot\ndata: " + *hub->snapshot_ + "\n\n";
      }
      if (f_.events) {
        if (dropped_ > 0) {
          out += "event: dropped\ndata: {\"dropped\":" + std::to_string(dropped_) + "}\n\n";
          dropped_ = 0;
        }
        std::size_t sent = 0;
        for (const auto& e : hub->ring_) {
          if (e.index < next_index_)
            continue;
          if (sent == console_hub::per_pull)
            break;
          next_index_ = e.index + 1;
          if (f_.after && e.position <= *f_.after)
            continue;
          if (!matches(e))
            continue;
          out += "id: " + std::to_string(e.position) + "\nevent: event\ndata: " + e.json + "\n\n";
          ++sent;
        }
      }
    }
    if (out.empty() && clock::now() - last_sent_ > std::chrono::seconds(15))
      out = ": keep-alive\n\n"; // proxies do not time the stream out
    if (!out.empty())
      last_sent_ = clock::now();
    return out;
  }

  [[nodiscard]] bool matches(const console_hub::event_item& e) const {
    return (f_.tenant_id.empty() || e.tenant_id == f_.tenant_id) && (f_.type.empty() || e.type == f_.type);
  }

  std::shared_ptr<std::atomic<console_hub*>> hub_; // null once the hub is gone
  console_hub::filter f_;
  bool first_ = true;
  std::uint64_t seen_snapshot_ = 0;
  std::uint64_t next_index_ = 0; // the hub's index of the next event this stream has not looked at
  std::int64_t dropped_ = 0;     // events for this stream the ring let go before it sent them (under the hub's lock)
  clock::time_point last_sent_;
};

// -- the hub ----------------------------------------------------------------------------------

console_hub::~console_hub() {
  {
    std::lock_guard lock{mu_};
    stopping_ = true;
    for (auto* s : streams_)
      s->hub_->store(nullptr);
  }
  wake_.notify_all();
  if (sampler_.joinable())
    sampler_.join();
}

std::shared_ptr<stream_source> console_hub::subscribe(filter f) {
  auto handle = std::make_shared<std::atomic<console_hub*>>(this);
  auto s = std::make_shared<console_stream>(handle, f);
  {
    std::lock_guard lock{mu_};
    if (f.events) {
      if (ring_.empty() && f.after && (!tail_after_ || *f.after < *tail_after_))
        tail_after_ = *f.after; // a fresh ring starts where the first resuming stream stopped
      s->next_index_ = 0;
      // A stream that resumes after events this ring no longer holds: they were let go.
      if (f.after && !ring_.empty() && ring_.front().position > *f.after + 1 && ring_.front().index > 0)
        s->dropped_ = static_cast<std::int64_t>(ring_.front().position - *f.after - 1);
      if (!f.after && !ring_.empty()) // a new tail starts with the last few events
        s->next_index_ = ring_.size() > 50 ? ring_[ring_.size() - 50].index : ring_.front().index;
    }
    streams_.push_back(s.get());
    if (!sampler_.joinable())
      sampler_ = std::thread([this] { run(); });
  }
  wake_.notify_all();
  return s;
}

void console_hub::leave(console_stream* s) {
  std::lock_guard lock{mu_};
  std::erase(streams_, s);
}

std::size_t console_hub::subscribers() const {
  std::lock_guard lock{mu_};
  return streams_.size();
}

std::uint64_t console_hub::samples() const {
  std::lock_guard lock{mu_};
  return samples_;
}

void console_hub::run() {
  std::unique_lock lock{mu_};
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !streams_.empty(); });
    if (stopping_)
      return;
    bool events = std::any_of(streams_.begin(), streams_.end(), [](auto* s) { return s->f_.events; });
    lock.unlock();
    auto started = clock::now();
    sample_snapshot();
    if (events)
      sample_events();
    lock.lock();
    ++samples_;
    if (streams_.empty()) { // nobody watches: forget the tail, start afresh next time
      ring_.clear();
      tail_after_.reset();
      snapshot_.reset();
      continue;
    }
    wake_.wait_until(lock, started + period, [this] { return stopping_; });
    if (stopping_)
      return;
  }
}

void console_hub::sample_snapshot() {
  struct pending {
    std::mutex mu;
    std::condition_variable cv;
    nlohmann::json doc = nlohmann::json::object();
    int left = 5;
  };
  auto p = std::make_shared<pending>();
  auto part = [p](const char* name) {
    return [p, name](nlohmann::json d) {
      std::lock_guard lock{p->mu};
      p->doc[name] = std::move(d);
      if (--p->left == 0)
        p->cv.notify_all();
    };
  };
  admin_nodes(a_, part("nodes"));
  admin_actors(a_, 10, part("actors"));
  admin_crashes(a_, 10, part("crashes"));
  admin_stores(a_, part("stores"));
  admin_mailboxes(a_, 10, part("mailboxes"));
  std::unique_lock lock{p->mu};
  if (!p->cv.wait_for(lock, std::chrono::seconds(4), [&] { return p->left == 0; }))
    return; // a part is late (the gather's own timeout is 2 s): skip this sample
  p->doc["at"] = protocol::format_rfc3339(protocol::now_us());
  auto text = std::make_shared<const std::string>(p->doc.dump(-1, ' ', false, replace_invalid));
  lock.unlock();
  std::lock_guard hub{mu_};
  snapshot_ = std::move(text);
  ++snapshot_seq_;
}

void console_hub::sample_events() {
  actors::event_query q;
  {
    std::lock_guard lock{mu_};
    q.limit = 500;
    if (tail_after_)
      q.after = *tail_after_;
    else
      q.latest = true;
  }
  q.limit = q.latest ? 50 : 500;
  actors::event_page page;
  page.status = actors::store_status::unavailable;
  caf::scoped_actor self{a_.sys};
  self->request(a_.ctx.store, std::chrono::seconds(3), actors::events_atom::value, q)
    .receive([&](actors::event_page& r) { page = std::move(r); }, [](caf::error&) {});
  if (page.status != actors::store_status::ok)
    return; // the next sample tries again
  std::vector<event_item> fresh;
  v1::Event ev;
  for (const auto& row : page.rows) {
    event_item e;
    e.position = row.position;
    if (ev.ParseFromString(row.payload)) {
      e.tenant_id = ev.tenant_id();
      e.type = ev.type();
      e.json = "{\"position\":" + std::to_string(row.position) + ",\"event\":" + protocol::to_json(ev) + "}";
    } else {
      e.json = "{\"position\":" + std::to_string(row.position) + ",\"event\":null}";
    }
    fresh.push_back(std::move(e));
  }
  std::lock_guard lock{mu_};
  if (!page.rows.empty())
    tail_after_ = page.rows.back().position;
  else if (!tail_after_ && q.latest)
    tail_after_ = 0;
  for (auto& e : fresh) {
    e.index = next_index_++;
    ring_.push_back(std::move(e));
  }
  while (ring_.size() > ring_capacity) {
    const auto& gone = ring_.front();
    for (auto* s : streams_) // counted for each stream that wanted it and had not sent it
      if (s->f_.events && s->next_index_ <= gone.index && s->matches(gone) &&
          (!s->f_.after || gone.position > *s->f_.after))
        ++s->dropped_;
    ring_.pop_front();
  }
}

// -- the page ---------------------------------------------------------------------------------

bool serve_console_page(const std::shared_ptr<call>& c, std::string_view path) {
  if (path != "/console" && !path.starts_with("/console/"))
    return false;
  if (path == "/console/session")
    return false; // a route of its own
  if (c->req.method != "GET" && c->req.method != "HEAD") {
    auto r = api::problem(405, "method-not-allowed", "Method not allowed", "the console's pages are read with GET",
                          c->req.request_id);
    r.headers.emplace_back("Allow", "GET, HEAD");
    c->respond(std::move(r));
    return true;
  }
  c->route = "/console";
  std::string_view name = "index.html";
  if (path.starts_with("/console/assets/")) {
    name = path.substr(16);
    c->route = "/console/assets";
  }
  const auto& all = console_assets();
  auto it = std::find_if(all.begin(), all.end(), [&](const asset& x) { return x.name == name; });
  if (it == all.end()) {
    c->respond(api::problem(404, "not-found", "Not found",
                            "the console has no file " + std::string{name.substr(0, 100)}, c->req.request_id));
    return true;
  }
  api_response r;
  r.route = c->route;
  r.content_type = std::string{it->content_type};
  r.headers.emplace_back("ETag", std::string{it->etag});
  r.headers.emplace_back("Cache-Control", "no-cache"); // revalidate by ETag: a new build's files arrive at once
  r.headers.emplace_back("Content-Security-Policy", console_csp);
  r.headers.emplace_back("Vary", "Accept-Encoding");
  if (c->req.if_none_match == "*" || c->req.if_none_match.find(it->etag) != std::string::npos) {
    r.status = 304;
    c->respond(std::move(r));
    return true;
  }
  if (c->req.accept_encoding.find("gzip") != std::string::npos) {
    r.body = std::string{it->gzip};
    r.headers.emplace_back("Content-Encoding", "gzip");
  } else {
    r.body = std::string{it->body};
  }
  c->respond(std::move(r));
  return true;
}

} // namespace colony::adapters::http
