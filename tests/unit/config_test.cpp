// Configuration: sources and their order, validation naming the option, masking.
#include <catch2/catch.hpp>
#include <fstream>

#include "colony/runtime/config.hpp"

using colony::runtime::config_result;
using colony::runtime::load_config;

namespace {
config_result run(std::vector<std::string> args, std::vector<std::string> env = {}) {
  std::vector<const char*> argv{"colonyd"};
  for (auto& a : args)
    argv.push_back(a.c_str());
  std::vector<const char*> envp;
  for (auto& e : env)
    envp.push_back(e.c_str());
  envp.push_back(nullptr);
  return load_config(static_cast<int>(argv.size()), argv.data(), envp.data());
}
} // namespace

TEST_CASE("defaults: loopback, ./var, embedded SQLite") {
  auto r = run({});
  REQUIRE(r.what == config_result::action::run);
  CHECK(r.config.listen_host == "127.0.0.1");
  CHECK(r.config.listen_port == 8080);
  CHECK(r.config.data_dir == "./var");
  CHECK(r.config.store == "sqlite:");
  CHECK(r.config.http_body_limit == 1024 * 1024);
}

TEST_CASE("flags beat environment, both forms of flags work") {
  auto r = run({"--listen", "127.0.0.1:9001", "--log-format=json"}, {"COLONY_LISTEN=127.0.0.1:9000", "COLONY_DATA_DIR=/tmp/x"});
  REQUIRE(r.what == config_result::action::run);
  CHECK(r.config.listen_port == 9001);
  CHECK(r.config.data_dir == "/tmp/x");
  CHECK(r.config.log_format == "json");
  auto e = run({}, {"COLONY_HTTP_BODY_LIMIT=2MiB", "COLONY_ENTITY_IDLE_TIMEOUT=30s"});
  CHECK(e.config.http_body_limit == 2 * 1024 * 1024);
  CHECK(e.config.idle_timeout == std::chrono::seconds(30));
}

TEST_CASE("invalid values stop with exit code 2 and name the option") {
  auto check = [](config_result r, const std::string& needle) {
    CHECK(r.what == config_result::action::exit);
    CHECK(r.exit_code == 2);
    CHECK(r.output.find(needle) != std::string::npos);
  };
  check(run({"--listen", "nowhere"}), "listen");
  check(run({"--log-format", "xml"}), "log-format");
  check(run({"--http.body-limit", "lots"}), "http.body-limit");
  check(run({}, {"COLONY_ENTITY_IDLE_TIMEOUT=soon"}), "COLONY_ENTITY_IDLE_TIMEOUT");
  check(run({"--no-such-option", "1"}), "--no-such-option");
  check(run({"--store", "mysql://root:hunter2@db/x"}), "store");
  CHECK(run({"--store", "mysql://root:hunter2@db/x"}).output.find("hunter2") == std::string::npos);
  check(run({"--tenant.default-plan", "gold"}), "tenant.default-plan");
}

TEST_CASE("--help lists options with defaults; --dump-config masks secrets") {
  auto h = run({"--help"});
  CHECK(h.exit_code == 0);
  CHECK(h.output.find("--listen") != std::string::npos);
  CHECK(h.output.find("127.0.0.1:8080") != std::string::npos);
  CHECK(h.output.find("COLONY_DATA_DIR") != std::string::npos);
  auto d = run({"--dump-config", "--store", "postgresql://app:s3cret@127.0.0.1:5432/colony"});
  CHECK(d.exit_code == 0);
  CHECK(d.output.find("s3cret") == std::string::npos);
  CHECK(d.output.find("postgresql://app:***@127.0.0.1:5432/colony") != std::string::npos);
  auto secret = std::string{"an-hs256-secret-that-is-long-enough-0123"};
  auto a = run({"--dump-config", "--auth-jwt-hs256-secret", secret, "--stripe-webhook-secret", "whsec_hidden"});
  CHECK(a.exit_code == 0);
  CHECK(a.output.find(secret) == std::string::npos);
  CHECK(a.output.find("whsec_hidden") == std::string::npos);
  CHECK(a.output.find("auth-jwt-hs256-secret = \"***\"") != std::string::npos);
  // A secret that is refused is not quoted in the error either.
  auto shorty = run({"--auth-jwt-hs256-secret", "tooshort-secret"});
  CHECK(shorty.exit_code == 2);
  CHECK(shorty.output.find("auth-jwt-hs256-secret") != std::string::npos);
  CHECK(shorty.output.find("tooshort-secret") == std::string::npos);
  // Every auth option also comes from the environment.
  const char* env[] = {"COLONY_AUTH_JWT_HS256_SECRET=an-hs256-secret-that-is-long-enough-0123",
                       "COLONY_AUTH_JWKS=/etc/colony/jwks.json", "COLONY_AUTH_ISSUER=https://idp.example",
                       "COLONY_AUTH_AUDIENCE=colony-api", nullptr};
  const char* argv[] = {"colonyd"};
  auto e = load_config(1, argv, env);
  REQUIRE(e.what == config_result::action::run);
  CHECK(e.config.auth_hs256_secret == secret);
  CHECK(e.config.auth_jwks == "/etc/colony/jwks.json");
  CHECK(e.config.auth_issuer == "https://idp.example");
  CHECK(e.config.auth_audience == "colony-api");
}

TEST_CASE("the config file (CAF format) sets options and plans") {
  auto path = std::string{"/tmp/colony-config-test.conf"};
  {
    std::ofstream f{path};
    f << "[colony]\nlisten=\"127.0.0.1:7000\"\nlog-level=\"debug\"\n"
         "[colony.http]\nbody-limit=4096\n"
         "[colony.entity]\nidle-timeout=2s\n"
         "[colony.tenant]\ndefault-plan=\"basic\"\n"
         "[colony.plans]\nbasic = { max-users = 3 }\nunlimited = { }\n";
  }
  auto r = run({"--config", path});
  REQUIRE(r.what == config_result::action::run);
  CHECK(r.config.listen_port == 7000);
  CHECK(r.config.http_body_limit == 4096);
  CHECK(r.config.idle_timeout == std::chrono::seconds(2));
  CHECK(r.config.rules.plans.size() == 2);
  CHECK(r.config.rules.plans.at("basic").max_users == 3);
  CHECK_FALSE(r.config.rules.plans.at("unlimited").max_users.has_value());
  {
    std::ofstream f{path};
    f << "[colony.http]\nbody-limit=\"huge\"\n";
  }
  auto bad = run({"--config", path});
  CHECK(bad.exit_code == 2);
  CHECK(bad.output.find("http.body-limit") != std::string::npos);
  CHECK(run({"--config", "/nonexistent/colony.conf"}).exit_code == 2);
}
