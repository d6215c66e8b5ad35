// colony-bench-actors: in-process figures of the benchmark harness
// (tests/bench/bench.py). Prints one JSON object per run on stdout.
//
//   colony-bench-actors registry --store SPEC --users N --inflight K --seconds S
//     figure 4: GETs through the entity registry to live user actors, K in
//     flight, against bare CAF request/response between two actors, K in flight.
//   colony-bench-actors memory --store SPEC --users N
//     figure 5: RSS growth per activated (then idle) user actor.
//   colony-bench-actors activations --store SPEC --users N --inflight K [--rounds R --paced 1]
//     figure 6: activations per second of cold users (each loads from the store),
//     in R slices; paced, the harness runs its reference between the slices.
#include <caf/all.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>

#include "colony/actors/entities.hpp"
#include "colony/adapters/store.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/entity_registry.hpp"
#include "colony/runtime/log.hpp"
#include "colony/v1/tenant.pb.h"
#include "colony/v1/user.pb.h"

using namespace colony;
using namespace colony::actors;
using clk = std::chrono::steady_clock;

namespace {

struct args {
  std::string mode;
  std::string store = "sqlite:";
  std::string data_dir = "/tmp/colony-bench";
  long users = 1000;
  int inflight = 64;
  double seconds = 5;
  int rounds = 1;
  bool paced = false;
};

long rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stol(line.substr(6));
  return 0;
}

struct fixture {
  caf::actor_system& sys;
  store_port store;
  caf::actor registry;
  std::shared_ptr<entity_router> router;
  caf::scoped_actor self;
  std::string tenant_id;
  std::vector<std::string> user_ids;

  fixture(caf::actor_system& s, const args& a) : sys(s), self(s) {
    adapters::store_options o;
    o.spec = a.store;
    o.data_dir = a.data_dir;
    o.read_connections = 4;
    store = adapters::spawn_store(sys, o);
    for (int i = 0; i < 300; ++i) {
      bool ready = false;
      self->request(store, std::chrono::seconds(5), health_atom::value)
        .receive([&](store_health& h) { ready = h.ready; }, [](caf::error&) {});
      if (ready)
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    entity_env env;
    env.store = store;
    env.idle_timeout = std::chrono::hours(1);
    auto r = runtime::spawn_entity_registry(sys, env, nullptr);
    registry = r.actor;
    router = r.router;
  }
  ~fixture() {
    runtime::stop_entity_registry(runtime::entity_registry{registry, router});
    caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
  }

  /// A tenant on the enterprise plan and `n` users, written straight through
  /// the store port (group-committed, many in flight): fast set-up.
  void seed(long n) {
    tenant_id = protocol::new_uuid_v7();
    auto now = protocol::now_us();
    v1::Tenant t;
    t.set_id(tenant_id);
    t.set_slug("bench-" + tenant_id.substr(24));
    t.set_name("Bench");
    t.set_plan("enterprise");
    t.set_status("active");
    t.set_version(1);
    change tc;
    tc.kind = entity_kind::tenant;
    tc.row = entity_row{
      tenant_id, tenant_id, t.slug(), t.name(), "active", "enterprise", "", now, now, 1, t.SerializeAsString()};
    commit(std::move(tc));
    user_ids.reserve(static_cast<std::size_t>(n));
    const long window = 2048;
    long sent = 0, done = 0;
    auto send_one = [&] {
      auto id = protocol::new_uuid_v7();
      v1::User u;
      u.set_id(id);
      u.set_tenant_id(tenant_id);
      u.set_email("u" + std::to_string(sent) + "@bench.example");
      u.set_name("User " + std::to_string(sent));
      u.set_status("active");
      u.add_roles("member");
      u.set_version(1);
      protocol::set_timestamp(*u.mutable_created_at(), now);
      protocol::set_timestamp(*u.mutable_updated_at(), now);
      change ch;
      ch.kind = entity_kind::user;
      ch.row =
        entity_row{tenant_id, id, u.email(), u.name(), "active", "", ",member,", now, now, 1, u.SerializeAsString()};
      ch.user_count_delta = 1;
      user_ids.push_back(id);
      self->send(store, commit_atom::value, std::move(ch));
      ++sent;
    };
    while (sent < n && sent - done < window)
      send_one();
    while (done < n) {
      self->receive([&](commit_outcome& o) {
        if (o.status != store_status::ok)
          throw std::runtime_error("seeding failed: " + o.detail);
        ++done;
        if (sent < n)
          send_one();
      });
    }
  }

  void commit(change ch) {
    self->request(store, std::chrono::seconds(30), commit_atom::value, std::move(ch))
      .receive([](commit_outcome&) {}, [](caf::error&) {});
  }

  /// Sends GETs for users[first, first+count) with `inflight` outstanding; returns completions.
  long gets(long count, int inflight, std::function<bool()> more, long first = 0) {
    long sent = 0, done = 0, failed = 0;
    auto n = static_cast<long>(user_ids.size());
    auto send_one = [&] {
      command cmd;
      cmd.what = op::get;
      // As the HTTP edge does: the directory names the live activation, the
      // command goes straight to it.
      self->send(
        router->route(entity_key{entity_kind::user, tenant_id, user_ids[static_cast<std::size_t>((first + sent) % n)]}),
        std::move(cmd));
      ++sent;
    };
    while (sent < inflight && (count < 0 || sent < count))
      send_one();
    while (done < sent) {
      self->receive([&](entity_reply& r) {
        ++done;
        if (r.error)
          ++failed;
        if ((count < 0 || sent < count) && more())
          send_one();
      });
    }
    if (failed)
      std::cerr << failed << " failed GETs\n";
    return done;
  }
};

/// The reference: bare CAF request/response between two actors, `inflight` outstanding.
double bare_caf_rate(caf::actor_system& sys, int inflight, double seconds) {
  // One (unused) argument: CAF 0.17 dereferences a null pointer for argument-less function actors.
  auto echo = sys.spawn([](int) -> caf::behavior { return {[](int x) { return x; }}; }, 0);
  caf::scoped_actor self{sys};
  long done = 0;
  auto start = clk::now();
  auto stop_at = start + std::chrono::duration<double>(seconds);
  int out = 0;
  for (; out < inflight; ++out)
    self->send(echo, 1);
  bool more = true;
  while (out > 0) {
    self->receive([&](int) {
      ++done;
      --out;
      if (more && (done % 1024 != 0 || clk::now() < stop_at)) {
        self->send(echo, 1);
        ++out;
      } else {
        more = false;
      }
    });
  }
  auto secs = std::chrono::duration<double>(clk::now() - start).count();
  caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
  return static_cast<double>(done) / secs;
}

int run(const args& a) {
  caf::actor_system_config cfg;
  // As colonyd runs (scheduler.threads = 0): one worker per core, not CAF's max(cores, 4).
  cfg.set("scheduler.max-threads", static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  caf::actor_system sys{cfg};
  if (a.mode == "registry") {
    fixture f{sys, a};
    f.seed(a.users);
    f.gets(static_cast<long>(f.user_ids.size()), a.inflight, [] { return true; }); // activate all (warm)
    // Figure and reference alternate in four rounds, so that both see the
    // same share of a machine whose load drifts (one after the other, the
    // ratio moved between 0.37 and 0.53 from run to run).
    constexpr int rounds = 4;
    double slice = a.seconds / rounds, figure_done = 0, figure_secs = 0, reference_sum = 0;
    for (int round = 0; round < rounds; ++round) {
      auto start = clk::now();
      auto stop_at = start + std::chrono::duration<double>(slice);
      long i = 0;
      figure_done +=
        static_cast<double>(f.gets(-1, a.inflight, [&] { return (++i % 1024 != 0) || clk::now() < stop_at; }));
      figure_secs += std::chrono::duration<double>(clk::now() - start).count();
      reference_sum += bare_caf_rate(sys, a.inflight, slice);
    }
    double figure = figure_done / figure_secs;
    double reference = reference_sum / rounds;
    std::printf("{\"figure\": %.1f, \"reference\": %.1f, \"unit\": \"req/s\", \"inflight\": %d, \"users\": %ld, "
                "\"rounds\": %d}\n",
                figure, reference, a.inflight, a.users, rounds);
    return 0;
  }
  if (a.mode == "memory") {
    fixture f{sys, a};
    auto t0 = clk::now();
    f.seed(a.users);
    auto seed_s = std::chrono::duration<double>(clk::now() - t0).count();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    auto before = rss_kib();
    auto t1 = clk::now();
    f.gets(static_cast<long>(f.user_ids.size()), a.inflight, [] { return true; });
    auto activate_s = std::chrono::duration<double>(clk::now() - t1).count();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    auto after = rss_kib();
    double per_actor = static_cast<double>(after - before) * 1024.0 / static_cast<double>(a.users);
    std::printf("{\"figure\": %.1f, \"unit\": \"bytes/actor\", \"rss_before_kib\": %ld, \"rss_after_kib\": %ld, "
                "\"users\": %ld, \"seed_s\": %.2f, \"activate_s\": %.2f}\n",
                per_actor, before, after, a.users, seed_s, activate_s);
    return 0;
  }
  if (a.mode == "activations") {
    // The users are activated in --rounds slices. With --paced, the harness
    // drives it over stdin/stdout: "seeded" once the users are written (it
    // lets PostgreSQL settle), then one line per slice after each "go", so
    // that it can run its reference (pgbench -S) between the slices and both
    // see the same share of a machine whose speed drifts.
    fixture f{sys, a};
    f.seed(a.users);
    auto handshake = [&a](const char* line) {
      if (!a.paced)
        return;
      std::printf("%s\n", line);
      std::fflush(stdout);
      std::string go;
      if (!std::getline(std::cin, go))
        throw std::runtime_error("the harness went away");
    };
    handshake("{\"seeded\": true}");
    auto n = static_cast<long>(f.user_ids.size());
    long done = 0;
    double secs = 0;
    for (int r = 0; r < a.rounds; ++r) {
      long first = n * r / a.rounds, last = n * (r + 1) / a.rounds;
      auto start = clk::now();
      done += f.gets(
        last - first, a.inflight, [] { return true; }, first);
      secs += std::chrono::duration<double>(clk::now() - start).count();
      if (r + 1 < a.rounds)
        handshake("{\"round\": true}");
    }
    std::printf("{\"figure\": %.1f, \"unit\": \"activations/s\", \"users\": %ld, \"inflight\": %d, "
                "\"rounds\": %d, \"seconds\": %.2f}\n",
                static_cast<double>(done) / secs, a.users, a.inflight, a.rounds, secs);
    return 0;
  }
  std::cerr << "usage: colony-bench-actors registry|memory|activations [--store S] [--data-dir D] [--users N] "
               "[--inflight K] [--seconds S] [--rounds R] [--paced 1]\n";
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  args a;
  if (argc < 2)
    return run(a);
  a.mode = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--store")
      a.store = v;
    else if (k == "--data-dir")
      a.data_dir = v;
    else if (k == "--users")
      a.users = std::stol(v);
    else if (k == "--inflight")
      a.inflight = std::stoi(v);
    else if (k == "--seconds")
      a.seconds = std::stod(v);
    else if (k == "--rounds")
      a.rounds = std::max(1, std::stoi(v));
    else if (k == "--paced")
      a.paced = v == "1";
    else {
      std::cerr << "unknown option " << k << "\n";
      return 2;
    }
  }
  log::init(log::format::text, log::level::warn);
  try {
    return run(a);
  } catch (const std::exception& e) {
    std::cerr << "colony-bench-actors: " << e.what() << "\n";
    return 1;
  }
}
