#include "colony/actors/plugin/plugin_kit.hpp"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "colony/actors/plugin/config_schema.hpp"
#include "colony/actors/plugin/plugin_host.hpp"
#include "colony/actors/plugin/plugin_model.hpp"
#include "colony/protocol/json.hpp"
#include "colony/v1/event.pb.h"

namespace colony::actors {
namespace {

using json = nlohmann::json;
using detail::host_answer;
using detail::host_call;
using detail::host_io;
using detail::listed_user;
using protocol::errc;
using protocol::fail;
using protocol::failure;

json parse(const std::string& text) {
  auto v = json::parse(text, nullptr, false);
  return v.is_discarded() ? json() : v;
}

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  return s;
}

/// The value of header `name` (any case) in `headers`, or "".
std::string header_of(const std::vector<std::pair<std::string, std::string>>& headers, const std::string& name) {
  std::string value;
  for (const auto& [k, v] : headers)
    if (lower(k) == lower(name))
      value = v;
  return value;
}

/// A failure as one line: its detail and each field's message.
std::string describe(const failure& f) {
  std::string out = f.detail;
  for (const auto& e : f.errors)
    if (out.find(e.message) == std::string::npos)
      out += "; " + e.field + ": " + e.message;
  return out;
}

/// The fixture's world: the tenant's kv store, its users and the answers
/// of the http requests the plugin makes (each recorded).
class fixture_io final : public host_io {
public:
  fixture_io(const json& c, const kit_limits& lim) : lim_(lim) {
    if (c.contains("kv"))
      for (const auto& [k, v] : c["kv"].items())
        kv[k] = v.dump();
    if (c.contains("users"))
      for (const auto& u : c["users"])
        users_.push_back(u);
    if (c.contains("http"))
      for (const auto& h : c["http"])
        answers_.push_back({h, false});
  }

  void kv_get(const host_call&, const std::string& key, then_fn<std::optional<std::string>> then) override {
    auto it = kv.find(key);
    then(it == kv.end() ? std::nullopt : std::optional<std::string>{it->second}, std::nullopt);
  }

  void kv_list(const host_call&, const std::string& prefix, const std::string& after, int limit,
               then_fn<std::vector<plugin_kv>> then) override {
    std::vector<plugin_kv> page;
    for (auto it = kv.upper_bound(after); it != kv.end() && static_cast<int>(page.size()) < limit; ++it)
      if (it->first.compare(0, prefix.size(), prefix) == 0)
        page.push_back({it->first, it->second});
    then(std::move(page), std::nullopt);
  }

  void user_get(const host_call&, const std::string& id, then_fn<std::string> then) override {
    for (const auto& u : users_)
      if (u.value("id", std::string{}) == id) {
        then(u.dump(), std::nullopt);
        return;
      }
    then("null", std::nullopt);
  }

  /// The fixture's users in its order (their place is the page position).
  void users_list(const host_call&, list_query q, then_fn<std::vector<listed_user>> then) override {
    std::vector<listed_user> rows;
    for (std::size_t i = 0; i < users_.size() && static_cast<int>(rows.size()) <= q.limit; ++i) {
      const auto& u = users_[i];
      auto n = static_cast<std::int64_t>(i + 1);
      if (q.has_after && n <= q.after_number)
        continue;
      if (!q.status.empty() && u.value("status", std::string{"active"}) != q.status)
        continue;
      if (!q.role.empty()) {
        bool has = false;
        if (u.contains("roles") && u["roles"].is_array())
          for (const auto& r : u["roles"])
            has = has || (r.is_string() && r.get<std::string>() == q.role);
        if (!has)
          continue;
      }
      if (!q.q.empty() && lower(u.value("email", std::string{})).find(lower(q.q)) == std::string::npos &&
          lower(u.value("name", std::string{})).find(lower(q.q)) == std::string::npos)
        continue;
      rows.push_back({n, u.value("id", std::string{}), u.dump()});
    }
    then(std::move(rows), std::nullopt);
  }

  void http(const host_call&, outbound_request r, std::function<void(outbound_response)> then) override {
    outbound_response res;
    for (auto& [a, used] : answers_) {
      if (used || lower(a.value("method", std::string{"GET"})) != lower(r.method) || a.value("url", "") != r.url)
        continue;
      used = true;
      if (a.contains("error")) {
        res.error = a["error"].is_string() ? a["error"].get<std::string>() : "refused";
      } else {
        res.status = a.value("status", 200);
        if (a.contains("headers") && a["headers"].is_object())
          for (const auto& [k, v] : a["headers"].items())
            res.headers.emplace_back(lower(k), v.is_string() ? v.get<std::string>() : v.dump());
        if (a.contains("body"))
          res.body = a["body"].is_string() ? a["body"].get<std::string>() : a["body"].dump();
      }
      break;
    }
    if (res.status == 0 && res.error.empty())
      res.error = "the fixture has no answer for " + r.method + " " + r.url + " (add it to \"http\")";
    requests.push_back(std::move(r));
    then(std::move(res));
  }

  std::optional<std::chrono::milliseconds> http_max_timeout() const override { return lim_.http_timeout; }
  std::int64_t kv_quota() const override { return lim_.kv_quota; }

  std::map<std::string, std::string> kv; // key -> JSON text
  std::vector<outbound_request> requests;

private:
  kit_limits lim_;
  std::vector<json> users_;
  std::vector<std::pair<json, bool>> answers_; // and whether it was used
};

struct run_result {
  plugin_run run;
  std::string fault, message; // failed: the sandbox's fault, or the commit's (kv-quota)
  json emitted = json::array();
};

/// The call to its end: host calls answered from the fixture, then its
/// effects applied as the store would (the last write of a key wins, the
/// quota over the whole store, all or nothing).
run_result drive(plugin_code& code, host_call& call, fixture_io& io, const std::string& args) {
  run_result out;
  auto r = code.call(call.hook, args);
  for (int guard = 0; r.st == plugin_run::state::pending && guard < 1'000'000; ++guard) {
    std::optional<host_answer> answer;
    detail::serve_host_call(io, call, r.request, [&answer](host_answer a) { answer = std::move(a); });
    r = code.resume(answer ? answer->json : "null", answer ? answer->error : std::optional<std::string>{"no answer"});
  }
  out.run = r;
  if (r.st != plugin_run::state::done) {
    out.fault = r.fault;
    out.message = r.message;
    return out;
  }
  auto kv = io.kv;
  for (const auto& w : call.effects.writes)
    if (w.value)
      kv[w.key] = *w.value;
    else
      kv.erase(w.key);
  std::int64_t bytes = 0;
  for (const auto& [k, v] : kv)
    bytes += kv_footprint(k.size(), v.size());
  if (bytes > io.kv_quota()) {
    out.fault = "kv-quota";
    out.message = "colony.kv: the plugin's store would hold " + std::to_string(bytes) + " bytes, over its quota of " +
      std::to_string(io.kv_quota()) + "; nothing of this call was written";
    return out;
  }
  io.kv = std::move(kv);
  const std::string prefix = "plugin." + call.binding.name() + ".";
  for (const auto& e : call.effects.events) {
    v1::Event ev;
    (void)ev.ParseFromString(e.payload);
    auto type = ev.type().rfind(prefix, 0) == 0 ? ev.type().substr(prefix.size()) : ev.type();
    out.emitted.push_back({{"type", type}, {"data", parse(protocol::to_json(ev.plugin_emitted().data()))}});
  }
  return out;
}

/// Whether `want` is in `got`: equal, or (objects) each member of want is in got's.
bool contains(const json& got, const json& want) {
  if (want.is_object() && got.is_object()) {
    for (const auto& [k, v] : want.items())
      if (!got.contains(k) || !contains(got[k], v))
        return false;
    return true;
  }
  return got == want;
}

/// A body as the expectation spells it: text, or (a table) JSON.
bool body_matches(const std::string& got, const json& want) {
  if (want.is_string())
    return got == want.get<std::string>();
  return parse(got) == want;
}

void check_answer(const std::string& hook, const json& want, const run_result& r, std::vector<std::string>& fails) {
  const auto& results = r.run.results;
  if (want.contains("results") && parse(results) != want["results"])
    fails.push_back("results are " + results + ", expected " + want["results"].dump());
  bool user_hook = hook == "before_user_create" || hook == "before_user_update";
  if (user_hook && (want.contains("accept") || want.contains("reject") || want.contains("user"))) {
    auto v = user_hook_verdict(results);
    if (v.what == user_verdict::kind::invalid) {
      fails.push_back("the answer is not one the node takes: " + v.reason);
    } else if (want.contains("reject")) {
      if (v.what != user_verdict::kind::reject)
        fails.push_back("the user was accepted, expected a rejection");
      else if (want["reject"].is_string() && v.reason != want["reject"].get<std::string>())
        fails.push_back("rejected with \"" + v.reason + "\", expected \"" + want["reject"].get<std::string>() + "\"");
    } else if (v.what == user_verdict::kind::reject) {
      fails.push_back("rejected: " + v.reason);
    } else {
      if (hook == "before_user_create")
        if (auto why = created_user_error(v.user))
          fails.push_back("the node would refuse the returned user: " + *why);
      if (want.contains("user") && !contains(parse(v.user), want["user"]))
        fails.push_back("the user is " + v.user + ", expected " + want["user"].dump());
    }
  }
  if (hook == "http" && (want.contains("status") || want.contains("body") || want.contains("headers"))) {
    auto answer = http_answer(results);
    if (!answer) {
      fails.push_back("the answer is not one the node sends: " + describe(answer.error()));
      return;
    }
    const auto* a = &answer.value();
    if (want.contains("status") && want["status"] != a->status)
      fails.push_back("status " + std::to_string(a->status) + ", expected " + want["status"].dump());
    if (want.contains("body") && !body_matches(a->body, want["body"]))
      fails.push_back("body " + a->body + ", expected " + want["body"].dump());
    if (want.contains("headers") && want["headers"].is_object())
      for (const auto& [k, v] : want["headers"].items()) {
        auto got = lower(k) == "content-type" ? a->content_type : header_of(a->headers, k);
        if (!v.is_string() || got != v.get<std::string>())
          fails.push_back("header " + k + " is \"" + got + "\", expected " + v.dump());
      }
  }
}

void check_effects(const json& want, const run_result& r, const fixture_io& io, std::vector<std::string>& fails) {
  if (want.contains("kv")) {
    json kv = json::object();
    for (const auto& [k, v] : io.kv)
      kv[k] = parse(v);
    if (kv != want["kv"])
      fails.push_back("kv holds " + kv.dump() + ", expected " + want["kv"].dump());
  }
  if (want.contains("emitted") && r.emitted != want["emitted"])
    fails.push_back("emitted " + r.emitted.dump() + ", expected " + want["emitted"].dump());
  if (want.contains("requests")) {
    const auto& reqs = want["requests"];
    if (!reqs.is_array() || reqs.size() != io.requests.size())
      fails.push_back(std::to_string(io.requests.size()) + " http requests made, expected " +
                      std::to_string(reqs.is_array() ? reqs.size() : 0));
    for (std::size_t i = 0; reqs.is_array() && i < std::min(reqs.size(), io.requests.size()); ++i) {
      const auto& w = reqs[i];
      const auto& got = io.requests[i];
      std::string at = "request " + std::to_string(i + 1) + ": ";
      if (w.contains("method") && lower(w.value("method", "")) != lower(got.method))
        fails.push_back(at + "method " + got.method + ", expected " + w["method"].dump());
      if (w.contains("url") && w["url"] != got.url)
        fails.push_back(at + "url " + got.url + ", expected " + w["url"].dump());
      if (w.contains("body") && !body_matches(got.body, w["body"]))
        fails.push_back(at + "body " + got.body + ", expected " + w["body"].dump());
      if (w.contains("headers") && w["headers"].is_object())
        for (const auto& [k, v] : w["headers"].items()) {
          auto value = header_of(got.headers, k);
          if (!v.is_string() || value != v.get<std::string>())
            fails.push_back(at + "header " + k + " is \"" + value + "\", expected " + v.dump());
        }
    }
  }
}

/// The publication of `p`, or why plugin.json cannot be read as one.
std::optional<v1::PublishPluginRequest> publication(const kit_plugin& p, std::string* why) {
  auto m = parse(p.manifest_json);
  if (!m.is_object()) {
    *why = "plugin.json is not a JSON object";
    return std::nullopt;
  }
  if (m.contains("source")) {
    *why = "plugin.json: the source lives in plugin.lua, not in \"source\"";
    return std::nullopt;
  }
  m["source"] = p.source;
  v1::PublishPluginRequest req;
  if (auto err = protocol::from_json(m.dump(), req)) {
    *why = "plugin.json: " + (err->field.empty() ? "" : err->field + ": ") + err->message;
    return std::nullopt;
  }
  return req;
}

kit_case run_case(const plugin_engine& engine, const v1::PublishPluginRequest& pub, const json& c, std::size_t index,
                  const kit_limits& lim) {
  kit_case out;
  out.name = c.is_object() ? c.value("name", "case " + std::to_string(index + 1)) : "case " + std::to_string(index + 1);
  auto fail = [&out](std::string why) {
    out.failures.push_back(std::move(why));
    return out;
  };
  if (!c.is_object() || !c.contains("hook") || !c["hook"].is_string())
    return fail("a case is an object with a \"hook\" (and args, config, kv, users, http, expect)");
  for (const auto& [k, _] : c.items())
    if (k != "name" && k != "hook" && k != "args" && k != "config" && k != "tenantId" && k != "kv" && k != "users" &&
        k != "http" && k != "expect" && k != "chained")
      return fail("unknown member \"" + k +
                  "\" (name, hook, args, config, tenantId, kv, users, http, chained, expect)");
  const auto hook = c["hook"].get<std::string>();
  if (std::find(pub.hooks().begin(), pub.hooks().end(), hook) == pub.hooks().end())
    return fail("plugin.json does not declare the hook '" + hook + "'");
  json args = c.value("args", json::array());
  json config = c.value("config", json::object());
  json want = c.value("expect", json::object());
  if (!args.is_array() || !config.is_object() || !want.is_object() || (c.contains("kv") && !c["kv"].is_object()) ||
      (c.contains("users") && !c["users"].is_array()) || (c.contains("http") && !c["http"].is_array()))
    return fail("args, users and http are arrays; config, kv and expect are objects");
  v1::PluginBinding b;
  b.set_name(pub.name());
  b.set_version(pub.version());
  *b.mutable_hooks() = pub.hooks();
  *b.mutable_permissions() = pub.permissions();
  b.set_failure_policy("fail");
  if (pub.has_config_schema()) {
    auto errors = validate_config(protocol::to_json(pub.config_schema()), config.dump());
    if (!errors.empty())
      return fail("the config would be refused when enabled: " + errors.front().field + ": " + errors.front().message);
  }
  (void)protocol::from_json(config.dump(), *b.mutable_config());
  plugin_run err;
  auto code = engine.load("kit/" + pub.name() + "@" + pub.version(), pub.source(), &err);
  if (!code)
    return fail("plugin.lua: " + err.message);
  host_call call;
  call.tenant_id = c.value("tenantId", std::string{"t-kit"});
  call.binding = b;
  call.hook = hook;
  call.meta.request_id = "kit-" + std::to_string(index + 1);
  call.meta.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  call.chained = c.value("chained", false);
  std::vector<std::string> each;
  for (const auto& a : args)
    each.push_back(a.dump());
  fixture_io io(c, lim);
  auto r = drive(*code, call, io,
                 hook_arguments(hook_context(call.tenant_id, b, call.meta.request_id, call.meta.traceparent), each));
  out.outcome = r.fault.empty() ? "ok " + r.run.results : r.fault + ": " + r.message;
  if (want.contains("fault")) {
    if (r.fault != want.value("fault", ""))
      out.failures.push_back("the hook came to \"" + (r.fault.empty() ? "ok" : r.fault) + "\", expected the fault " +
                             want["fault"].dump());
    if (want.contains("message") && r.message.find(want.value("message", "")) == std::string::npos)
      out.failures.push_back("the message is \"" + r.message + "\", expected it to contain " + want["message"].dump());
  } else if (!r.fault.empty()) {
    out.failures.push_back("the hook failed: " + out.outcome);
  } else {
    check_answer(hook, want, r, out.failures);
  }
  check_effects(want, r, io, out.failures);
  out.passed = out.failures.empty();
  return out;
}

} // namespace

std::optional<protocol::failure> check_publication(const plugin_engine& engine, const v1::PublishPluginRequest& req) {
  if (auto err = validate_publication(req))
    return err;
  if (req.has_config_schema())
    if (auto err = check_config_schema(protocol::to_json(req.config_schema()))) {
      failure f = fail(errc::invalid, err->field + ": " + err->message);
      f.errors.push_back(*err);
      return f;
    }
  plugin_run err;
  auto code = engine.load(req.name() + "@" + req.version(), req.source(), &err);
  if (!code) {
    failure f = fail(errc::invalid, "source: " + err.message);
    f.errors.push_back({"source", err.message});
    return f;
  }
  for (int i = 0; i < req.hooks_size(); ++i)
    if (!code->has(req.hooks(i))) {
      failure f = fail(errc::invalid,
                       "hooks[" + std::to_string(i) + "]: the source's table has no function '" + req.hooks(i) + "'");
      f.errors.push_back({"hooks[" + std::to_string(i) + "]", "the source's table has no function of this name"});
      return f;
    }
  return std::nullopt;
}

std::optional<std::string> kit_check(const plugin_engine& engine, const kit_plugin& p) {
  std::string why;
  auto pub = publication(p, &why);
  if (!pub)
    return why;
  if (auto f = check_publication(engine, *pub))
    return describe(*f);
  return std::nullopt;
}

std::string kit_publication(const kit_plugin& p) {
  auto m = parse(p.manifest_json);
  if (!m.is_object())
    return p.manifest_json;
  m["source"] = p.source;
  return m.dump(2);
}

std::vector<kit_case> kit_run(const plugin_engine& engine, const kit_plugin& p, const std::string& fixture_json,
                              const kit_limits& lim) {
  std::string why;
  auto pub = publication(p, &why);
  if (!pub)
    return {kit_case{"the plugin", false, {why}, {}}};
  auto doc = json::parse(fixture_json, nullptr, false);
  if (doc.is_discarded())
    return {kit_case{"the fixture", false, {"not JSON"}, {}}};
  std::vector<kit_case> out;
  if (!doc.is_array())
    doc = json::array({doc});
  for (std::size_t i = 0; i < doc.size(); ++i)
    out.push_back(run_case(engine, *pub, doc[i], i, lim));
  return out;
}

} // namespace colony::actors
