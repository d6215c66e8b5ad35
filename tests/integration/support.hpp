// Which store the integration tests run against: COLONY_TEST_STORE=sqlite (a
// fresh file per test) or COLONY_TEST_STORE=postgres with the DSN in the file
// named by COLONY_TEST_PG_DSN_FILE (written by tests/support/pg_fixture.sh).
#pragma once

#include <caf/all.hpp>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "colony/adapters/store.hpp"
#include "colony/protocol/time.hpp"

namespace colony::test {

inline std::string store_kind() {
  const char* k = std::getenv("COLONY_TEST_STORE");
  return k ? k : "sqlite";
}

inline std::string store_spec() {
  if (store_kind() == "postgres") {
    const char* f = std::getenv("COLONY_TEST_PG_DSN_FILE");
    REQUIRE(f != nullptr); // the CTest fixture provides it; a missing server is a failure, not a skip
    std::ifstream in{f};
    std::string dsn;
    std::getline(in, dsn);
    REQUIRE_FALSE(dsn.empty());
    return dsn;
  }
  auto dir = std::filesystem::temp_directory_path() / ("colony-it-" + protocol::new_uuid_v7());
  std::filesystem::create_directories(dir);
  return "sqlite:" + (dir / "colony.db").string();
}

/// Waits until `pred` holds (polling), up to `limit`.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

/// Waits for the store to report ready.
inline void await_ready(caf::actor_system& sys, const actors::store_port& store) {
  caf::scoped_actor self{sys};
  bool ok = eventually([&] {
    bool ready = false;
    self->request(store, std::chrono::seconds(5), actors::health_atom::value)
      .receive([&](actors::store_health& h) { ready = h.ready; }, [](caf::error&) {});
    return ready;
  });
  REQUIRE(ok);
}

/// A store service on the store under test, and an actor to ask it.
struct store_fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  actors::store_port store;
  std::unique_ptr<caf::scoped_actor> self;

  store_fixture() {
    sys = std::make_unique<caf::actor_system>(cfg);
    adapters::store_options o;
    o.spec = store_spec();
    store = adapters::spawn_store(*sys, o);
    self = std::make_unique<caf::scoped_actor>(*sys);
    await_ready(*sys, store);
  }
  ~store_fixture() { caf::anon_send_exit(store, caf::exit_reason::user_shutdown); }
  store_fixture(const store_fixture&) = delete;
  store_fixture& operator=(const store_fixture&) = delete;
};

} // namespace colony::test
