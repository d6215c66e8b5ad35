#include "plugin_test.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "colony/actors/plugin/plugin_kit.hpp"
#include "colony/adapters/plugins.hpp"
#include "colony/runtime/config.hpp"
#include "modules.hpp"

namespace colony::colonyd {
namespace {

namespace fs = std::filesystem;

bool read_file(const fs::path& p, std::string& out) {
  std::ifstream f(p, std::ios::binary);
  if (!f)
    return false;
  std::ostringstream s;
  s << f.rdbuf();
  out = s.str();
  return true;
}

/// One plugin directory: its cases' report on stdout; whether all passed.
bool test_dir(const fs::path& dir, const actors::plugin_engine& engine, const actors::kit_limits& lim) {
  actors::kit_plugin p;
  if (!read_file(dir / "plugin.json", p.manifest_json) || !read_file(dir / "plugin.lua", p.source)) {
    std::cout << dir.string() << ": a plugin directory holds plugin.json and plugin.lua\n";
    return false;
  }
  if (auto why = actors::kit_check(engine, p)) {
    std::cout << dir.string() << ": would not publish: " << *why << "\n";
    return false;
  }
  std::vector<fs::path> fixtures;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir / "tests", ec))
    if (e.is_regular_file() && e.path().extension() == ".json")
      fixtures.push_back(e.path());
  std::sort(fixtures.begin(), fixtures.end());
  if (fixtures.empty()) {
    std::cout << dir.string() << ": no fixtures (tests/*.json)\n";
    return false;
  }
  int passed = 0, failed = 0;
  std::cout << dir.string() << " (" << engine.describe_limits() << ")\n";
  for (const auto& f : fixtures) {
    std::string text;
    (void)read_file(f, text);
    for (const auto& c : actors::kit_run(engine, p, text, lim)) {
      std::cout << (c.passed ? "  ok    " : "  FAIL  ") << f.filename().string() << ": " << c.name << "\n";
      for (const auto& why : c.failures)
        std::cout << "        - " << why << "\n";
      if (!c.passed && !c.outcome.empty())
        std::cout << "        (the hook came to: " << c.outcome.substr(0, 500) << ")\n";
      (c.passed ? passed : failed)++;
    }
  }
  std::cout << passed << " passed, " << failed << " failed\n";
  return failed == 0;
}

} // namespace

int plugin_test(int argc, char** argv, char** envp) {
  std::vector<fs::path> dirs;
  int i = 1;
  for (; i < argc && argv[i][0] != '-'; ++i)
    dirs.emplace_back(argv[i]);
  // The rest are node options (--plugins.instructions, --config ...): the
  // limits come from the same registry, file and environment as a node's.
  std::vector<const char*> rest{"colonyd"};
  for (; i < argc; ++i)
    rest.push_back(argv[i]);
  if (dirs.empty()) {
    std::cerr << "usage: colonyd plugin-test DIR... [--plugins.instructions N --plugins.time 50ms ...]\n"
                 "Runs each plugin directory's tests/*.json in the node's sandbox (docs/plugins.md).\n";
    return 2;
  }
  auto res = runtime::load_config(static_cast<int>(rest.size()), rest.data(), envp, runtime::registry_of(modules()));
  if (res.what == runtime::config_result::action::exit) {
    (res.exit_code == 0 ? std::cout : std::cerr) << res.output;
    return res.exit_code;
  }
  const auto& cfg = res.config;
  auto engine = adapters::make_lua_engine(adapters::plugin_limits(cfg));
  actors::kit_limits kl;
  kl.kv_quota = cfg.plugin_kv_quota;
  kl.http_timeout = cfg.plugin_http_timeout;
  bool ok = true;
  for (const auto& d : dirs)
    ok = test_dir(d, *engine, kl) && ok;
  return ok ? 0 : 1;
}

} // namespace colony::colonyd
