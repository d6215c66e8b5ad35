#include "plugin_kit.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace colony::ctl {
namespace {

namespace fs = std::filesystem;
using njson = nlohmann::json;

bool write_file(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  f << text;
  return static_cast<bool>(f);
}

std::optional<std::string> read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f)
    return std::nullopt;
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

/// The registry's rule for names: [a-z][a-z0-9-]{1,62}, no "--", not ending in "-".
bool valid_name(const std::string& n) {
  if (n.size() < 2 || n.size() > 63 || n[0] < 'a' || n[0] > 'z' || n.back() == '-' || n.find("--") != std::string::npos)
    return false;
  for (char c : n)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
      return false;
  return true;
}

const char* scaffold_lua = R"lua(-- %NAME%: a Colony plugin (docs/plugins.md). The source returns a table of
-- hook functions; each gets ctx (tenantId, plugin, version, config,
-- requestId, traceparent) first. Test with `colonyctl plugin test %NAME%`.

return {
  -- Runs before a user is created: return the user (it may change email,
  -- name, roles, status, attributes) to accept, or nil and a reason to
  -- refuse (the API answers 422 plugin-rejected with the reason).
  before_user_create = function(ctx, user)
    if ctx.config.blockedNames then
      for _, n in ipairs(ctx.config.blockedNames) do
        if user.name == n then return nil, "the name " .. n .. " is not allowed" end
      end
    end
    return user
  end,

  -- Serves ANY /v1/tenants/{t}/x/%NAME%/{path}.
  http = function(ctx, req)
    return {status = 200, body = {hello = req.path, tenant = ctx.tenantId}}
  end,
}
)lua";

const char* scaffold_json = R"json({
  "name": "%NAME%",
  "version": "0.1.0",
  "description": "What %NAME% does",
  "hooks": ["before_user_create", "http"],
  "permissions": {"http": [], "kv": false},
  "configSchema": {
    "type": "object",
    "properties": {
      "blockedNames": {"type": "array", "items": {"type": "string"}}
    }
  }
}
)json";

const char* scaffold_test = R"json([
  {
    "name": "a user is accepted as it is",
    "hook": "before_user_create",
    "args": [{"email": "ann@example.com", "name": "Ann"}],
    "expect": {"accept": true, "user": {"name": "Ann"}}
  },
  {
    "name": "a blocked name is refused",
    "hook": "before_user_create",
    "config": {"blockedNames": ["root"]},
    "args": [{"email": "root@example.com", "name": "root"}],
    "expect": {"reject": "the name root is not allowed"}
  },
  {
    "name": "the http hook answers",
    "hook": "http",
    "args": [{"method": "GET", "path": "ping", "query": {}, "headers": {}, "body": "",
              "caller": {"credential": "key", "roles": ["viewer"], "userId": ""}}],
    "expect": {"status": 200, "body": {"hello": "ping", "tenant": "t-kit"}}
  }
]
)json";

std::string with_name(std::string text, const std::string& name) {
  for (auto at = text.find("%NAME%"); at != std::string::npos; at = text.find("%NAME%", at + name.size()))
    text.replace(at, 6, name);
  return text;
}

/// colonyd: $COLONYD, next to this program, or on $PATH.
std::string find_colonyd() {
  if (const char* env = std::getenv("COLONYD"); env != nullptr && *env != '\0')
    return env;
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto sibling = self.parent_path() / "colonyd";
    if (fs::exists(sibling, ec))
      return sibling.string();
  }
  return "colonyd";
}

} // namespace

int plugin_new(const std::string& name, const std::string& parent) {
  if (!valid_name(name)) {
    std::cerr << "colonyctl: a plugin's name is 2 to 63 of a-z, 0-9 and '-', starting with a letter\n";
    return 2;
  }
  fs::path dir = fs::path(parent.empty() ? "." : parent) / name;
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    std::cerr << "colonyctl: " << dir.string() << " exists already\n";
    return 2;
  }
  if (!fs::create_directories(dir / "tests", ec) || !write_file(dir / "plugin.lua", with_name(scaffold_lua, name)) ||
      !write_file(dir / "plugin.json", with_name(scaffold_json, name)) ||
      !write_file(dir / "tests" / "hooks.json", scaffold_test)) {
    std::cerr << "colonyctl: cannot write " << dir.string() << (ec ? ": " + ec.message() : std::string{}) << "\n";
    return 1;
  }
  std::cout << "made " << dir.string() << "/: plugin.json, plugin.lua, tests/hooks.json\n"
            << "next: colonyctl plugin test " << dir.string() << "\n";
  return 0;
}

int plugin_test(const std::vector<std::string>& dirs, const std::string& colonyd,
                const std::vector<std::string>& settings, const std::string& config) {
  std::vector<std::string> args{"colonyd", "plugin-test"};
  args.insert(args.end(), dirs.begin(), dirs.end());
  for (const auto& s : settings) {
    auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "colonyctl: --set takes key=value, e.g. plugins.instructions=1000000\n";
      return 2;
    }
    args.push_back("--" + s.substr(0, eq));
    args.push_back(s.substr(eq + 1));
  }
  if (!config.empty()) {
    args.emplace_back("--config");
    args.push_back(config);
  }
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  auto path = colonyd.empty() ? find_colonyd() : colonyd;
  std::cout.flush();
  execvp(path.c_str(), argv.data());
  std::cerr << "colonyctl: cannot run " << path << " (plugin test runs colonyd plugin-test; --colonyd or $COLONYD)\n";
  return 1;
}

int plugin_publish(const client& cl, const std::string& dir, bool json) {
  auto manifest = read_file(fs::path(dir) / "plugin.json");
  auto source = read_file(fs::path(dir) / "plugin.lua");
  if (!manifest || !source) {
    std::cerr << "colonyctl: " << dir << " holds no plugin.json and plugin.lua\n";
    return 2;
  }
  auto body = njson::parse(*manifest, nullptr, false);
  if (!body.is_object()) {
    std::cerr << "colonyctl: " << dir << "/plugin.json is not a JSON object\n";
    return 2;
  }
  body["source"] = *source;
  reply r;
  try {
    r = cl.request("POST", "/v1/plugins", body.dump());
  } catch (const transport_error& e) {
    std::cerr << "colonyctl: " << e.what() << "\n";
    return 1;
  }
  auto doc = njson::parse(r.body, nullptr, false);
  if (r.status >= 400) {
    std::cerr << "colonyctl: " << r.status << " " << (doc.is_object() ? doc.value("title", "") : "") << ": "
              << (doc.is_object() ? doc.value("detail", r.body) : r.body) << "\n";
    return r.status == 404 ? 4 : 1;
  }
  if (json)
    std::cout << doc.dump(2) << "\n";
  else
    std::cout << "published " << doc.value("name", "") << "@" << doc.value("version", "") << " (sha256 "
              << doc.value("sha256", "") << ")\n";
  return 0;
}

} // namespace colony::ctl
