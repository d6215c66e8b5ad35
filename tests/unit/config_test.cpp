// Configuration: sources and their order, validation naming the option, masking.
#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>
#include <set>
#include <stdexcept>

#include "colony/runtime/config.hpp"
#include "colony/runtime/options.hpp"
#include "modules.hpp"

using colony::runtime::config_result;
using colony::runtime::load_config;

namespace {
/// colonyd's own registry: every module's options.
const colony::runtime::option_registry& registry() {
  static const auto r = colony::runtime::registry_of(colony::colonyd::modules());
  return r;
}

config_result run(std::vector<std::string> args, std::vector<std::string> env = {}) {
  std::vector<const char*> argv{"colonyd"};
  for (auto& a : args)
    argv.push_back(a.c_str());
  std::vector<const char*> envp;
  for (auto& e : env)
    envp.push_back(e.c_str());
  envp.push_back(nullptr);
  return load_config(static_cast<int>(argv.size()), argv.data(), envp.data(), registry());
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
  auto r = run({"--listen", "127.0.0.1:9001", "--log-format=json"},
               {"COLONY_LISTEN=127.0.0.1:9000", "COLONY_DATA_DIR=/tmp/x"});
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
  auto e = load_config(1, argv, env, registry());
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

TEST_CASE("unknown keys and sections in the file stop the start, naming the nearest known one") {
  auto path = std::string{"/tmp/colony-config-unknown.conf"};
  auto with = [&](const std::string& text) {
    std::ofstream{path} << text;
    return run({"--config", path});
  };
  auto typo = with("[colony.http]\nbody-limt = \"2MiB\"\n");
  CHECK(typo.exit_code == 2);
  CHECK(typo.output.find("unknown key colony.http.body-limt") != std::string::npos);
  CHECK(typo.output.find("did you mean colony.http.body-limit?") != std::string::npos);
  auto top = with("[colony]\nlisten-address = \"127.0.0.1:1\"\n");
  CHECK(top.exit_code == 2);
  CHECK(top.output.find("colony.listen-address") != std::string::npos);
  CHECK(top.output.find("did you mean colony.listen?") != std::string::npos);
  auto section = with("[colony.webhook]\ntimeout = \"1s\"\n");
  CHECK(section.exit_code == 2);
  CHECK(section.output.find("unknown section [colony.webhook]") != std::string::npos);
  CHECK(section.output.find("colony.webhooks") != std::string::npos);
  auto outside = with("[server]\nport = 80\n");
  CHECK(outside.exit_code == 2);
  CHECK(outside.output.find("[server]") != std::string::npos);
  // The shipped file has no unknown key.
  CHECK(run({"--config", COLONY_SOURCE_DIR "/config/colony.conf"}).what == config_result::action::run);
}

TEST_CASE("--dump-config writes a file that --config loads back to the same configuration") {
  auto a = run({"--dump-config", "--config", COLONY_SOURCE_DIR "/config/colony.conf", "--http.threads", "3",
                "--http.cors-origins", "https://a.example,https://b.example:8443", "--log-level", "debug",
                "--entity.idle-timeout", "90s", "--webhooks.allow-private-targets", "true", "--data-dir",
                "/tmp/with \"quotes\" and \\ slash", "--tenant.default-plan", "pro"});
  REQUIRE(a.exit_code == 0);
  auto path = std::string{"/tmp/colony-config-dumped.conf"};
  std::ofstream{path} << a.output;
  auto loaded = run({"--config", path});
  REQUIRE(loaded.what == config_result::action::run);
  CHECK(loaded.config.http_threads == 3);
  CHECK(loaded.config.http_cors_origins == std::vector<std::string>{"https://a.example", "https://b.example:8443"});
  CHECK(loaded.config.idle_timeout == std::chrono::seconds(90));
  CHECK(loaded.config.data_dir == "/tmp/with \"quotes\" and \\ slash");
  CHECK(loaded.config.webhook_allow_private_targets);
  CHECK(loaded.config.rules.default_plan == "pro");
  auto again = run({"--dump-config", "--config", path});
  CHECK(again.output == a.output);
  // Secrets are not written to the file; they come from the environment.
  auto s = run({"--dump-config", "--stripe-webhook-secret", "whsec_hidden"});
  CHECK(s.output.find("; stripe-webhook-secret = \"***\"  (secret: set COLONY_STRIPE_WEBHOOK_SECRET)") !=
        std::string::npos);
}

TEST_CASE("config/colony.conf is the option registry's own rendering") {
  // Regenerate with: build/bin/colonyd --config-template > config/colony.conf
  std::ifstream in{COLONY_SOURCE_DIR "/config/colony.conf"};
  REQUIRE(in);
  std::string file{std::istreambuf_iterator<char>{in}, {}};
  auto t = run({"--config-template"});
  REQUIRE(t.exit_code == 0);
  CHECK(file == t.output);
  // Every option is in it with its default, and in --help.
  auto help = run({"--help"}).output;
  for (const auto& o : registry().all()) {
    auto dot = o.name.rfind('.');
    auto key = dot == std::string::npos ? o.name : o.name.substr(dot + 1);
    CHECK(file.find("\n" + key + " = \"" + o.get(colony::runtime::node_config{}) + "\"\n") != std::string::npos);
    CHECK(help.find("--" + o.name + " ") != std::string::npos);
    CHECK_FALSE(o.module.empty());
  }
}

TEST_CASE("every module registers its options; a name is registered once") {
  std::set<std::string> modules;
  for (const auto& o : registry().all())
    modules.insert(o.module);
  for (const char* m :
       {"node", "secrets", "store", "relay", "entities", "timers", "webhooks", "commands", "billing", "auth", "http"})
    CHECK(modules.contains(m));
  colony::runtime::option_registry r;
  r.add("a", colony::runtime::opt::integer("x.y", "d", 0, 1, &colony::runtime::node_config::http_threads));
  CHECK_THROWS_AS(
    r.add("b", colony::runtime::opt::integer("x.y", "d", 0, 1, &colony::runtime::node_config::http_threads)),
    std::logic_error);
}
