#include "colony/actors/plugin/plugin_model.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "colony/protocol/json.hpp"
#include "colony/protocol/time.hpp"
#include "colony/v1/user.pb.h"

namespace colony::actors {
namespace {

using json = nlohmann::json;

bool digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

/// A numeric semver identifier: digits, no leading zero, fits 64 bits.
std::optional<std::uint64_t> number(std::string_view s) {
  if (!digits(s) || (s.size() > 1 && s[0] == '0') || s.size() > 18)
    return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s)
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  return v;
}

bool identifier_chars(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
  });
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    auto at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos)
      return out;
    start = at + 1;
  }
}

v1::Tenant next_of(const v1::Tenant& t, std::int64_t now_us) {
  v1::Tenant next = t;
  protocol::set_timestamp(*next.mutable_updated_at(), now_us);
  next.set_version(t.version() + 1);
  return next;
}

bool valid_host(std::string_view h) {
  if (h.empty() || h.size() > 253)
    return false;
  for (auto label : split(h, '.')) {
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
      return false;
    for (char c : label)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
        return false;
  }
  return true;
}

json parse_object(const std::string& text) {
  auto j = json::parse(text, nullptr, false);
  if (!j.is_object())
    return json{};
  // Lua has one empty table: an empty list of roles comes back as {}.
  if (auto it = j.find("roles"); it != j.end() && it->is_object() && it->empty())
    *it = json::array();
  return j;
}

} // namespace

bool known_hook(std::string_view hook) {
  return hook == plugin_hook::before_user_create || hook == plugin_hook::before_user_update ||
    hook == plugin_hook::on_event || hook == plugin_hook::http;
}

bool valid_plugin_name(std::string_view name) {
  if (name.size() < 2 || name.size() > 63 || name[0] < 'a' || name[0] > 'z' || name.back() == '-' ||
      name.find("--") != std::string_view::npos)
    return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

std::optional<semver> parse_semver(std::string_view text) {
  if (text.empty() || text.size() > 128)
    return std::nullopt;
  auto plus = text.find('+');
  if (plus != std::string_view::npos) {
    for (auto id : split(text.substr(plus + 1), '.'))
      if (!identifier_chars(id))
        return std::nullopt;
    text = text.substr(0, plus);
  }
  std::string_view pre;
  auto dash = text.find('-');
  if (dash != std::string_view::npos) {
    pre = text.substr(dash + 1);
    text = text.substr(0, dash);
    if (pre.empty())
      return std::nullopt;
  }
  auto core = split(text, '.');
  if (core.size() != 3)
    return std::nullopt;
  semver v;
  auto a = number(core[0]), b = number(core[1]), c = number(core[2]);
  if (!a || !b || !c)
    return std::nullopt;
  v.major = *a;
  v.minor = *b;
  v.patch = *c;
  if (!pre.empty())
    for (auto id : split(pre, '.')) {
      if (!identifier_chars(id) || (digits(id) && !number(id)))
        return std::nullopt;
      v.pre.emplace_back(id);
    }
  return v;
}

int compare(const semver& a, const semver& b) {
  auto three = [](std::uint64_t x, std::uint64_t y) { return x < y ? -1 : x > y ? 1 : 0; };
  if (int c = three(a.major, b.major); c != 0)
    return c;
  if (int c = three(a.minor, b.minor); c != 0)
    return c;
  if (int c = three(a.patch, b.patch); c != 0)
    return c;
  if (a.pre.empty() || b.pre.empty())
    return a.pre.empty() == b.pre.empty() ? 0 : a.pre.empty() ? 1 : -1; // a release ranks above its pre-releases
  for (std::size_t i = 0; i < std::min(a.pre.size(), b.pre.size()); ++i) {
    const auto &x = a.pre[i], &y = b.pre[i];
    bool nx = digits(x), ny = digits(y);
    if (nx && ny) {
      if (int c = three(*number(x), *number(y)); c != 0)
        return c;
    } else if (nx != ny) {
      return nx ? -1 : 1; // numeric identifiers rank below alphanumeric ones
    } else if (x != y) {
      return x < y ? -1 : 1;
    }
  }
  return three(a.pre.size(), b.pre.size());
}

std::optional<failure> validate_publication(const v1::PublishPluginRequest& req) {
  failure f = fail(errc::invalid, "the plugin cannot be published");
  if (!valid_plugin_name(req.name()))
    f.errors.push_back({"name", "2 to 63 of a-z, 0-9 and '-', starting with a letter"});
  if (!parse_semver(req.version()))
    f.errors.push_back({"version", "a semantic version such as 1.0.0 (semver.org)"});
  if (req.source().empty())
    f.errors.push_back({"source", "is required"});
  else if (req.source().size() > 256 * 1024)
    f.errors.push_back({"source", "is at most 256 KiB"});
  if (req.hooks().empty())
    f.errors.push_back({"hooks", "names at least one hook"});
  for (int i = 0; i < req.hooks_size(); ++i) {
    const auto& h = req.hooks(i);
    if (!known_hook(h))
      f.errors.push_back(
        {"hooks[" + std::to_string(i) + "]", "hooks are before_user_create, before_user_update, on_event and http"});
    for (int j = 0; j < i; ++j)
      if (req.hooks(j) == h)
        f.errors.push_back({"hooks[" + std::to_string(i) + "]", "is named twice"});
  }
  for (int i = 0; i < req.permissions().http_size(); ++i)
    if (!valid_host(req.permissions().http(i)))
      f.errors.push_back({"permissions.http[" + std::to_string(i) + "]", "a host name in lower case"});
  if (req.description().size() > 1024)
    f.errors.push_back({"description", "is at most 1024 bytes"});
  if (f.errors.empty())
    return std::nullopt;
  return f;
}

const v1::PluginBinding* find_binding(const v1::Tenant& t, std::string_view name) {
  for (const auto& b : t.plugins())
    if (b.name() == name)
      return &b;
  return nullptr;
}

bool has_hook(const v1::PluginBinding& b, std::string_view hook) {
  return std::find(b.hooks().begin(), b.hooks().end(), hook) != b.hooks().end();
}

event_feed feed_of(const v1::Tenant* t, std::string_view name) {
  const auto* b = t == nullptr ? nullptr : find_binding(*t, name);
  if (b == nullptr || !has_hook(*b, plugin_hook::on_event))
    return event_feed::none;
  return b->suspended() ? event_feed::paused : event_feed::running;
}

std::vector<std::pair<std::string, event_feed>> feed_changes(const v1::Tenant* before, const v1::Tenant& after) {
  std::vector<std::pair<std::string, event_feed>> out;
  auto consider = [&](const std::string& name) {
    if (std::any_of(out.begin(), out.end(), [&](const auto& c) { return c.first == name; }))
      return;
    auto now = feed_of(&after, name);
    if (now != feed_of(before, name))
      out.emplace_back(name, now);
  };
  for (const auto& b : after.plugins())
    consider(b.name());
  if (before != nullptr)
    for (const auto& b : before->plugins())
      consider(b.name());
  return out;
}

std::int64_t event_retry_us(std::int32_t attempts, double jitter) {
  std::int64_t base = std::int64_t{1'000'000} << std::clamp(attempts - 1, 0, 9);
  base = std::min<std::int64_t>(base, 300'000'000);
  return base + static_cast<std::int64_t>(static_cast<double>(base) * 0.2 * std::clamp(jitter, 0.0, 1.0));
}

bool any_hook(const v1::Tenant& t, std::string_view hook) {
  return std::any_of(t.plugins().begin(), t.plugins().end(),
                     [&](const v1::PluginBinding& b) { return !b.suspended() && has_hook(b, hook); });
}

outcome<v1::Tenant> enable_plugin(const v1::Tenant& t, v1::PluginBinding binding, std::int64_t now_us) {
  auto next = next_of(t, now_us);
  protocol::set_timestamp(*binding.mutable_updated_at(), now_us);
  binding.set_suspended(false);
  binding.clear_suspended_reason();
  for (auto& b : *next.mutable_plugins())
    if (b.name() == binding.name()) {
      *binding.mutable_enabled_at() = b.enabled_at();
      b = std::move(binding);
      return next;
    }
  if (t.limits().has_max_plugins() && t.plugins_size() >= t.limits().max_plugins()) {
    auto limit = t.limits().max_plugins();
    failure f = fail(errc::limit_exceeded,
                     "plan '" + t.plan() + "' allows " + std::to_string(limit) + " plugins and the tenant has " +
                       std::to_string(t.plugins_size()));
    f.strings.emplace_back("limitName", "maxPlugins");
    f.numbers.emplace_back("limit", limit);
    f.numbers.emplace_back("current", t.plugins_size());
    return f;
  }
  protocol::set_timestamp(*binding.mutable_enabled_at(), now_us);
  *next.add_plugins() = std::move(binding);
  next.mutable_usage()->set_plugins(next.plugins_size());
  return next;
}

outcome<v1::Tenant> disable_plugin(const v1::Tenant& t, std::string_view name, std::int64_t now_us) {
  auto next = next_of(t, now_us);
  auto* list = next.mutable_plugins();
  auto it = std::find_if(list->begin(), list->end(), [&](const v1::PluginBinding& b) { return b.name() == name; });
  if (it == list->end())
    return fail(errc::not_found, "plugin '" + std::string{name} + "' is not enabled for this tenant");
  list->erase(it);
  next.mutable_usage()->set_plugins(next.plugins_size());
  return next;
}

outcome<v1::Tenant> suspend_plugin(const v1::Tenant& t, std::string_view name, std::string reason,
                                   std::int64_t now_us) {
  auto next = next_of(t, now_us);
  for (auto& b : *next.mutable_plugins())
    if (b.name() == name) {
      b.set_suspended(true);
      b.set_suspended_reason(std::move(reason));
      protocol::set_timestamp(*b.mutable_updated_at(), now_us);
      return next;
    }
  return fail(errc::not_found, "plugin '" + std::string{name} + "' is not enabled for this tenant");
}

std::string hook_context(const std::string& tenant_id, const v1::PluginBinding& b, const std::string& request_id,
                         const std::string& traceparent) {
  std::string out = "{\"tenantId\":\"" + protocol::json_escape(tenant_id) + "\",\"plugin\":\"" +
    protocol::json_escape(b.name()) + "\",\"version\":\"" + protocol::json_escape(b.version()) + "\",\"config\":";
  out += b.has_config() ? protocol::to_json(b.config()) : "{}";
  out += ",\"requestId\":\"" + protocol::json_escape(request_id) + "\",\"traceparent\":\"" +
    protocol::json_escape(traceparent) + "\"}";
  return out;
}

std::string hook_arguments(const std::string& ctx, const std::vector<std::string>& args) {
  std::string out = "[" + ctx;
  for (const auto& a : args)
    out += "," + a;
  return out + "]";
}

user_verdict user_hook_verdict(const std::string& results_json) {
  user_verdict v;
  auto r = json::parse(results_json, nullptr, false);
  if (!r.is_array()) {
    v.reason = "the hook's results are not a list";
    return v;
  }
  if (r.empty() || r[0].is_null()) {
    v.what = user_verdict::kind::reject;
    if (r.size() > 1 && r[1].is_string())
      v.reason = r[1].get<std::string>();
    else
      v.reason = "rejected (the plugin gave no reason)";
    if (v.reason.size() > 500)
      v.reason.resize(500);
    v.reason = protocol::valid_utf8(v.reason);
    return v;
  }
  if (!r[0].is_object()) {
    v.reason = "the hook returned a " + std::string{r[0].type_name()} + ", not a user or nil";
    return v;
  }
  v.what = user_verdict::kind::accept;
  v.user = r[0].dump();
  return v;
}

const std::vector<std::string>& plugin_settable_user_fields() {
  static const std::vector<std::string> f{"email", "name", "roles", "status", "attributes"};
  return f;
}

std::optional<std::string> created_user_error(const std::string& returned_user) {
  auto body = creation_from_hook(returned_user);
  if (!body)
    return body.error().detail;
  v1::CreateUserRequest req;
  if (auto err = protocol::from_json(body.value(), req))
    return "the returned user's " + err->field + " " + err->message;
  return std::nullopt;
}

outcome<std::string> creation_from_hook(const std::string& returned_user) {
  auto u = parse_object(returned_user);
  json body = json::object();
  for (const auto& k : plugin_settable_user_fields())
    if (auto it = u.find(k); it != u.end() && !it->is_null() && !(it->is_array() && it->empty()) && *it != "")
      body[k] = *it; // an empty member takes the creation's default
  for (const auto& [k, v] : u.items())
    if (std::find(plugin_settable_user_fields().begin(), plugin_settable_user_fields().end(), k) ==
        plugin_settable_user_fields().end())
      return fail(errc::invalid, "the hook returned the member '" + k + "', which a plugin may not set");
  return body.dump();
}

outcome<std::string> proposed_user(const std::string& current_user, const std::string& patch) {
  auto cur = parse_object(current_user);
  auto p = json::parse(patch, nullptr, false);
  if (cur.is_null() || p.is_discarded())
    return fail(errc::malformed, "the user or the patch is not a JSON object");
  cur.merge_patch(p);
  return cur.dump();
}

outcome<std::string> patch_from_hook(const std::string& current_user, const std::string& returned_user) {
  auto cur = parse_object(current_user);
  auto ret = parse_object(returned_user);
  const auto& settable = plugin_settable_user_fields();
  auto is_settable = [&](const std::string& k) {
    return std::find(settable.begin(), settable.end(), k) != settable.end();
  };
  json patch = json::object();
  for (const auto& [k, v] : ret.items()) {
    auto it = cur.find(k);
    bool changed = it == cur.end() ? !v.is_null() : *it != v;
    if (!changed)
      continue;
    if (!is_settable(k))
      return fail(errc::invalid, "the hook changed the member '" + k + "', which a plugin may not set");
    if (k == "attributes" && v.is_object() && it != cur.end() && it->is_object()) {
      json sub = json::object(); // a merge patch replacing the attributes exactly
      for (const auto& [ak, av] : v.items())
        if (!it->contains(ak) || (*it)[ak] != av)
          sub[ak] = av;
      for (const auto& [ak, av] : it->items())
        if (!v.contains(ak))
          sub[ak] = nullptr;
      patch[k] = std::move(sub);
    } else {
      patch[k] = v;
    }
  }
  for (const auto& [k, v] : cur.items())
    if (!ret.contains(k) && is_settable(k) && k != "attributes")
      return fail(errc::invalid, "the hook's user has no '" + k + "'");
  return patch.dump();
}

namespace {

bool header_name_ok(const std::string& n) {
  if (n.empty() || n.size() > 64)
    return false;
  return std::all_of(n.begin(), n.end(),
                     [](char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'; });
}

/// Headers the node decides: framing, connection management, what the
/// pipeline sets on every answer (ids, rate limits, CORS, security).
bool reserved_header(const std::string& n) {
  static const std::vector<std::string> names{"content-length",
                                              "transfer-encoding",
                                              "connection",
                                              "keep-alive",
                                              "upgrade",
                                              "te",
                                              "trailer",
                                              "proxy-connection",
                                              "date",
                                              "server",
                                              "x-request-id",
                                              "traceparent",
                                              "strict-transport-security",
                                              "retry-after",
                                              "ratelimit",
                                              "ratelimit-policy",
                                              "set-cookie",
                                              "vary"};
  return std::find(names.begin(), names.end(), n) != names.end() || n.rfind("access-control-", 0) == 0;
}

} // namespace

std::string http_request_json(const plugin_http_request& r) {
  json doc{{"method", r.method},
           {"path", r.path},
           {"headers", json::object()},
           {"body", r.body},
           {"caller", {{"credential", r.credential}, {"roles", r.roles}, {"userId", r.user_id}}}};
  doc["query"] = json::parse(r.query_json, nullptr, false);
  if (doc["query"].is_discarded())
    doc["query"] = json::object();
  if (!r.content_type.empty())
    doc["headers"]["content-type"] = r.content_type;
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

outcome<plugin_http_answer> http_answer(const std::string& results_json) {
  auto bad = [](const std::string& why) { return outcome<plugin_http_answer>{fail(errc::invalid, why)}; };
  auto r = json::parse(results_json, nullptr, false);
  if (!r.is_array() || r.empty() || !r[0].is_object())
    return bad("an http hook returns a table {status=, headers=, body=}");
  const auto& t = r[0];
  plugin_http_answer a;
  for (const auto& [k, v] : t.items())
    if (k != "status" && k != "headers" && k != "body")
      return bad("the answer has a member '" + k + "'; it may have status, headers and body");
  if (t.contains("status")) {
    if (!t["status"].is_number_integer() || t["status"].get<std::int64_t>() < 200 ||
        t["status"].get<std::int64_t>() > 599)
      return bad("status must be an integer from 200 to 599");
    a.status = t["status"].get<int>();
  }
  if (t.contains("headers")) {
    const auto& h = t["headers"];
    if (!h.is_object() && !(h.is_array() && h.empty())) // Lua's {} encodes as []
      return bad("headers must be a table of names to strings");
    if (h.size() > 32)
      return bad("at most 32 headers");
    for (const auto& [k, v] : h.items()) {
      std::string n = k;
      std::transform(n.begin(), n.end(), n.begin(),
                     [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
      if (!header_name_ok(n))
        return bad("header '" + k.substr(0, 64) + "': a name of letters, digits and '-'");
      if (reserved_header(n))
        return bad("header '" + n + "' is set by the node, not by a plugin");
      if (!v.is_string())
        return bad("header '" + n + "' must be a string");
      auto value = v.get<std::string>();
      if (value.size() > 4096 || value.find_first_of("\r\n") != std::string::npos ||
          value.find('\0') != std::string::npos)
        return bad("header '" + n + "': at most 4096 bytes, without line breaks");
      if (n == "content-type")
        a.content_type = std::move(value);
      else
        a.headers.emplace_back(k, std::move(value)); // as the plugin spells it
    }
  }
  if (t.contains("body")) {
    const auto& b = t["body"];
    if (b.is_string())
      a.body = b.get<std::string>();
    else if (b.is_object() || b.is_array()) {
      a.body = b.dump(-1, ' ', false, json::error_handler_t::replace);
      if (a.content_type.empty())
        a.content_type = "application/json";
    } else if (!b.is_null())
      return bad("body must be a string or a table");
  }
  if (a.content_type.empty())
    a.content_type = "text/plain; charset=utf-8";
  return a;
}

} // namespace colony::actors
