#include "colony/actors/plugin/plugin_host.hpp"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "../entity_common.hpp"
#include "colony/protocol/json.hpp"
#include "colony/protocol/url.hpp"
#include "colony/v1/event.pb.h"
#include "colony/v1/user.pb.h"

namespace colony::actors::detail {
namespace {

using json = nlohmann::json;
using reply_fn = std::function<void(host_answer)>;

/// The host of an http(s) URL Colony would call, in lower case (protocol::parse_http_url).
std::optional<std::string> url_host(const std::string& url) {
  auto u = protocol::parse_http_url(url);
  if (!u)
    return std::nullopt;
  auto h = u->host;
  for (auto& c : h)
    c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  return h;
}

host_answer raise(std::string message) { return host_answer{"null", std::move(message)}; }

host_answer value(const json& v) { return host_answer{v.dump(), std::nullopt}; }

/// A key a plugin may use: a non-empty string of at most kv_max_key bytes.
std::optional<std::string> key_error(const std::string& fn, const json& k) {
  if (!k.is_string())
    return "colony." + fn + ": the key must be a string";
  const auto& s = k.get_ref<const std::string&>();
  if (s.empty() || s.size() > kv_max_key)
    return "colony." + fn + ": a key is 1 to " + std::to_string(kv_max_key) + " bytes";
  return std::nullopt;
}

/// The call's own last write of `key`, if it made one (its reads see it).
const plugin_kv* own_write(const host_call& call, const std::string& key) {
  for (auto it = call.effects.writes.rbegin(); it != call.effects.writes.rend(); ++it)
    if (it->key == key)
      return &*it;
  return nullptr;
}

json decode_stored(const std::string& text) {
  auto v = json::parse(text, nullptr, false);
  return v.is_discarded() ? json() : v;
}

void kv_write(host_io& io, host_call& call, const std::string& fn, const json& args, bool erase,
              const reply_fn& reply) {
  if (args.size() != (erase ? 1u : 2u)) {
    reply(raise("colony." + fn + (erase ? "(key) takes one argument" : "(key, value) takes two arguments")));
    return;
  }
  if (auto why = key_error(fn, args[0])) {
    reply(raise(*why));
    return;
  }
  plugin_kv w;
  w.key = args[0].get<std::string>();
  if (!erase) {
    if (args[1].is_null()) {
      reply(raise("colony.kv.set: the value is nil; use colony.kv.delete(key) to remove a key"));
      return;
    }
    w.value = args[1].dump();
    if (w.value->size() > kv_max_value) {
      reply(raise("colony.kv.set: a value is at most " + std::to_string(kv_max_value / 1024) +
                  " KiB as JSON; this one is " + std::to_string(w.value->size()) + " bytes"));
      return;
    }
  }
  // What the call keeps in hand is bounded too (the store checks the quota at the end).
  auto bytes = static_cast<std::size_t>(kv_footprint(w.key.size(), w.value ? w.value->size() : 0));
  if (static_cast<std::int64_t>(call.pending_bytes + bytes) > io.kv_quota()) {
    reply(raise("colony." + fn + ": this call's writes would pass the plugin's kv quota of " +
                std::to_string(io.kv_quota()) + " bytes"));
    return;
  }
  call.pending_bytes += bytes;
  call.effects.writes.push_back(std::move(w));
  reply(value(true));
}

void kv_get(host_io& io, host_call& call, const json& args, const reply_fn& reply) {
  if (args.size() != 1) {
    reply(raise("colony.kv.get(key) takes one argument"));
    return;
  }
  if (auto why = key_error("kv.get", args[0])) {
    reply(raise(*why));
    return;
  }
  auto key = args[0].get<std::string>();
  if (const auto* w = own_write(call, key)) {
    reply(w->value ? host_answer{*w->value, std::nullopt} : value(nullptr));
    return;
  }
  io.kv_get(call, key, [reply](std::optional<std::string> v, std::optional<std::string> error) {
    if (error)
      reply(raise("colony.kv.get: " + *error));
    else
      reply(v ? value(decode_stored(*v)) : value(nullptr));
  });
}

/// colony.kv.list{prefix=, after=, limit=} -> {items = {{key=, value=}, ...}, next = key | nil}
void kv_list(host_io& io, host_call& call, const json& args, const reply_fn& reply) {
  json opts = args.empty() ? json::object() : args[0];
  if (args.size() > 1 || !(opts.is_object() || opts.is_null()) ||
      (opts.is_array() && !opts.empty())) { // an empty Lua table arrives as []
    reply(raise("colony.kv.list takes one table: {prefix=, after=, limit=}"));
    return;
  }
  if (opts.is_null())
    opts = json::object();
  std::string prefix, after;
  int limit = 50;
  if (opts.contains("prefix")) {
    if (!opts["prefix"].is_string() || opts["prefix"].get_ref<const std::string&>().size() > kv_max_key) {
      reply(raise("colony.kv.list: prefix must be a string of at most " + std::to_string(kv_max_key) + " bytes"));
      return;
    }
    prefix = opts["prefix"].get<std::string>();
  }
  if (opts.contains("after")) {
    if (!opts["after"].is_string()) {
      reply(raise("colony.kv.list: after must be a key (the next of the page before)"));
      return;
    }
    after = opts["after"].get<std::string>();
  }
  if (opts.contains("limit")) {
    if (!opts["limit"].is_number_integer() || opts["limit"].get<std::int64_t>() < 1 ||
        opts["limit"].get<std::int64_t>() > kv_max_list) {
      reply(raise("colony.kv.list: limit must be an integer from 1 to " + std::to_string(kv_max_list)));
      return;
    }
    limit = opts["limit"].get<int>();
  }
  for (const auto& [k, _] : opts.items())
    if (k != "prefix" && k != "after" && k != "limit") {
      reply(raise("colony.kv.list: unknown option '" + k + "' (prefix, after, limit)"));
      return;
    }
  // The call's own writes in range overlay the page (up to its last key when it is full).
  std::map<std::string, std::optional<std::string>> own;
  for (const auto& w : call.effects.writes)
    if (w.key > after && w.key.compare(0, prefix.size(), prefix) == 0)
      own[w.key] = w.value;
  io.kv_list(call, prefix, after, limit,
             [reply, own = std::move(own), limit](std::vector<plugin_kv> kv, std::optional<std::string> error) {
               if (error) {
                 reply(raise("colony.kv.list: " + *error));
                 return;
               }
               bool full = static_cast<int>(kv.size()) >= limit;
               std::map<std::string, std::optional<std::string>> page;
               for (auto& e : kv)
                 page[e.key] = std::move(e.value);
               for (const auto& [k, v] : own)
                 if (!full || kv.empty() || k <= kv.back().key)
                   page[k] = v;
               json items = json::array();
               std::string last;
               for (const auto& [k, v] : page) {
                 if (!v)
                   continue;
                 if (static_cast<int>(items.size()) == limit)
                   break;
                 items.push_back(json{{"key", k}, {"value", decode_stored(*v)}});
                 last = k;
               }
               json out{{"items", items}};
               if (full && !last.empty())
                 out["next"] = last;
               reply(value(out));
             });
}

/// plugin.<name>.<type>: a type is dot-separated words of [a-z0-9_], each starting with a letter.
bool valid_event_type(const std::string& t) {
  if (t.empty() || t.size() > 64)
    return false;
  bool word_start = true;
  for (char c : t) {
    if (c == '.') {
      if (word_start)
        return false;
      word_start = true;
      continue;
    }
    bool lower = c >= 'a' && c <= 'z';
    if (word_start ? !lower : !(lower || (c >= '0' && c <= '9') || c == '_'))
      return false;
    word_start = false;
  }
  return !word_start;
}

void emit(host_call& call, const json& args, const reply_fn& reply) {
  if (args.empty() || args.size() > 2 || !args[0].is_string()) {
    reply(raise("colony.emit(type, data) takes a type (a string) and a JSON value"));
    return;
  }
  if (call.chained) {
    reply(raise("colony.emit: not from on_event of another plugin's event (plugin events do not chain)"));
    return;
  }
  auto type = args[0].get<std::string>();
  if (!valid_event_type(type)) {
    reply(raise("colony.emit: the type is dot-separated lower-case words ([a-z][a-z0-9_]*), at most 64 bytes"));
    return;
  }
  if (static_cast<int>(call.effects.events.size()) >= max_emits) {
    reply(raise("colony.emit: at most " + std::to_string(max_emits) + " events per call"));
    return;
  }
  auto data = args.size() > 1 ? args[1].dump() : std::string{"null"};
  if (data.size() > emit_max_data) {
    reply(raise("colony.emit: data is at most " + std::to_string(emit_max_data / 1024) + " KiB as JSON"));
    return;
  }
  const auto& name = call.binding.name();
  auto now = protocol::now_us();
  auto ev = event_header("plugin." + name + "." + type, entity_key{entity_kind::plugin, call.tenant_id, name}, 0,
                         call.meta, now);
  auto* p = ev.mutable_plugin_emitted();
  p->set_plugin(name);
  p->set_version(call.binding.version());
  p->set_hook(call.hook);
  if (protocol::from_json(data, *p->mutable_data())) {
    reply(raise("colony.emit: data is not a JSON value"));
    return;
  }
  call.effects.events.push_back(seal(ev));
  reply(value(ev.id()));
}

void users_get(host_io& io, host_call& call, const json& args, const reply_fn& reply) {
  if (args.size() != 1 || !args[0].is_string() || args[0].get_ref<const std::string&>().empty() ||
      args[0].get_ref<const std::string&>().size() > 64) {
    reply(raise("colony.users.get(id) takes a user id (a string)"));
    return;
  }
  io.user_get(call, args[0].get<std::string>(), [reply](std::string user, std::optional<std::string> error) {
    if (error)
      reply(raise("colony.users.get: " + *error));
    else
      reply(host_answer{std::move(user), std::nullopt});
  });
}

/// colony.users.list{status=, role=, q=, limit=, after=} -> {users = {...}, next = cursor | nil}
void users_list(host_io& io, host_call& call, const json& args, const reply_fn& reply) {
  json opts = args.empty() || args[0].is_null() || (args[0].is_array() && args[0].empty()) ? json::object() : args[0];
  if (args.size() > 1 || !opts.is_object()) {
    reply(raise("colony.users.list takes one table: {status=, role=, q=, limit=, after=}"));
    return;
  }
  list_query q;
  q.kind = entity_kind::user;
  q.tenant_id = call.tenant_id;
  q.limit = 50;
  for (const auto& [k, v] : opts.items()) {
    if (k == "limit") {
      if (!v.is_number_integer() || v.get<std::int64_t>() < 1 || v.get<std::int64_t>() > users_max_list) {
        reply(raise("colony.users.list: limit must be an integer from 1 to " + std::to_string(users_max_list)));
        return;
      }
      q.limit = v.get<int>();
      continue;
    }
    if (!v.is_string() || v.get_ref<const std::string&>().size() > 200) {
      reply(raise("colony.users.list: " + k + " must be a string of at most 200 bytes"));
      return;
    }
    const auto& s = v.get_ref<const std::string&>();
    if (k == "status")
      q.status = s;
    else if (k == "role")
      q.role = s;
    else if (k == "q")
      q.q = s;
    else if (k == "after") { // "<createdAt in µs>:<id>", the next of the page before
      auto colon = s.find(':');
      char* end = nullptr;
      auto us = colon == std::string::npos ? 0 : std::strtoll(s.c_str(), &end, 10);
      if (colon == std::string::npos || end != s.c_str() + colon || colon + 1 == s.size()) {
        reply(raise("colony.users.list: after is the next of the page before"));
        return;
      }
      q.has_after = true;
      q.after_number = us;
      q.after_id = s.substr(colon + 1);
    } else {
      reply(raise("colony.users.list: unknown option '" + k + "' (status, role, q, limit, after)"));
      return;
    }
  }
  auto limit = q.limit;
  io.users_list(call, std::move(q), [reply, limit](std::vector<listed_user> rows, std::optional<std::string> error) {
    if (error) {
      reply(raise("colony.users.list: " + *error));
      return;
    }
    bool more = static_cast<int>(rows.size()) > limit;
    if (more)
      rows.resize(static_cast<std::size_t>(limit));
    std::string body = "{\"users\":[";
    for (std::size_t i = 0; i < rows.size(); ++i)
      body += (i == 0 ? "" : ",") + rows[i].json;
    body += "]";
    if (more)
      body +=
        ",\"next\":\"" + std::to_string(rows.back().sort_number) + ":" + protocol::json_escape(rows.back().id) + "\"";
    reply(host_answer{body + "}", std::nullopt});
  });
}

/// A header name a plugin may send: a token, not one the client sets itself.
std::optional<std::string> header_error(const std::string& name, const std::string& value) {
  static const char* reserved[] = {"host", "content-length", "transfer-encoding", "connection",          "upgrade",
                                   "te",   "trailer",        "keep-alive",        "proxy-authorization", "expect"};
  if (name.empty() || name.size() > 100)
    return "a header name is 1 to 100 characters";
  std::string lower;
  for (char c : name) {
    bool token = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
      std::string_view{"!#$%&'*+-.^_`|~"}.find(c) != std::string_view::npos;
    if (!token)
      return "'" + name + "' is not a header name";
    lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  }
  for (const char* r : reserved)
    if (lower == r || lower.rfind("proxy-", 0) == 0)
      return "the header '" + name + "' is the client's to set";
  if (value.size() > 8192 || value.find_first_of("\r\n") != std::string::npos || value.find('\0') != std::string::npos)
    return "the value of '" + name + "' must be one line of at most 8 KiB";
  return std::nullopt;
}

/// colony.http.request{method=, url=, headers=, body=, timeout=} -> {status=, headers=, body=}
void http_request(host_io& io, host_call& call, const json& args, const reply_fn& reply) {
  auto bad = [&reply](const std::string& why) { reply(raise("colony.http.request: " + why)); };
  auto max_timeout = io.http_max_timeout();
  if (!max_timeout) {
    bad("outgoing requests are not available on this node");
    return;
  }
  if (args.size() != 1 || !args[0].is_object()) {
    bad("takes one table: {method=, url=, headers=, body=, timeout=}");
    return;
  }
  const auto& a = args[0];
  for (const auto& [k, _] : a.items())
    if (k != "method" && k != "url" && k != "headers" && k != "body" && k != "timeout") {
      bad("unknown option '" + k + "' (method, url, headers, body, timeout)");
      return;
    }
  outbound_request r;
  r.method = a.contains("method") && a["method"].is_string() ? a["method"].get<std::string>() : "GET";
  for (auto& c : r.method)
    c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
  if (r.method != "GET" && r.method != "POST" && r.method != "PUT" && r.method != "PATCH" && r.method != "DELETE" &&
      r.method != "HEAD") {
    bad("method is GET, POST, PUT, PATCH, DELETE or HEAD");
    return;
  }
  if (!a.contains("url") || !a["url"].is_string()) {
    bad("url is required (http or https)");
    return;
  }
  r.url = a["url"].get<std::string>();
  auto host = url_host(r.url);
  if (!host) {
    bad("url must be an http or https URL of at most 2048 characters, without user info");
    return;
  }
  const auto& allowed = call.binding.permissions().http();
  if (std::find(allowed.begin(), allowed.end(), *host) == allowed.end()) {
    bad("the host '" + *host + "' is not in this plugin's manifest (permissions.http)");
    return;
  }
  bool has_type = false;
  if (a.contains("headers") && !(a["headers"].is_array() && a["headers"].empty())) {
    if (!a["headers"].is_object() || a["headers"].size() > 32) {
      bad("headers is a table of at most 32 name = value strings");
      return;
    }
    for (const auto& [k, v] : a["headers"].items()) {
      if (!v.is_string()) {
        bad("the value of header '" + k + "' must be a string");
        return;
      }
      if (auto why = header_error(k, v.get<std::string>())) {
        bad(*why);
        return;
      }
      std::string lower = k;
      for (auto& c : lower)
        c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
      has_type = has_type || lower == "content-type";
      r.headers.emplace_back(k, v.get<std::string>());
    }
  }
  if (a.contains("body") && !a["body"].is_null()) {
    if (a["body"].is_string()) {
      r.body = a["body"].get<std::string>();
      if (!has_type)
        r.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
    } else {
      r.body = a["body"].dump();
      if (!has_type)
        r.headers.emplace_back("Content-Type", "application/json");
    }
  }
  auto longest = *max_timeout;
  r.timeout = std::min(longest, std::chrono::milliseconds(5000));
  if (a.contains("timeout")) {
    if (!a["timeout"].is_number() || a["timeout"].get<double>() < 1 ||
        a["timeout"].get<double>() > static_cast<double>(longest.count())) {
      bad("timeout is in milliseconds, from 1 to " + std::to_string(longest.count()) + " (plugins.http-timeout)");
      return;
    }
    r.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(a["timeout"].get<double>()));
  }
  r.label = call.tenant_id + "/" + call.binding.name();
  io.http(call, std::move(r), [reply, host = *host](outbound_response res) {
    if (res.status == 0) {
      reply(raise("colony.http.request: " + host + ": " + res.error));
      return;
    }
    json headers = json::object();
    for (auto& [k, v] : res.headers)
      headers[k] = headers.contains(k) ? headers[k].get<std::string>() + ", " + v : v;
    json out{{"status", res.status}, {"headers", headers}};
    // Not text (invalid UTF-8) cannot cross as JSON: the body is then left out, named.
    auto body = json(res.body);
    try {
      (void)body.dump();
      out["body"] = std::move(body);
    } catch (const json::exception&) {
      out["body"] = nullptr;
      out["bodyError"] = "the answer is not UTF-8 text";
    }
    reply(value(out));
  });
}

} // namespace

void serve_host_call(host_io& io, host_call& call, const std::string& request, std::function<void(host_answer)> reply) {
  auto req = json::parse(request, nullptr, false);
  if (!req.is_object() || !req.contains("fn") || !req["fn"].is_string() || !req.contains("args") ||
      !req["args"].is_array()) {
    reply(raise("colony: a host call the node cannot read"));
    return;
  }
  const auto fn = req["fn"].get<std::string>();
  const auto& args = req["args"];
  if (fn.rfind("kv.", 0) == 0 && !call.binding.permissions().kv()) {
    reply(raise("colony." + fn + ": this plugin's manifest does not ask for kv (permissions.kv)"));
    return;
  }
  if (fn == "kv.get")
    kv_get(io, call, args, reply);
  else if (fn == "kv.set" || fn == "kv.delete")
    kv_write(io, call, fn, args, fn == "kv.delete", reply);
  else if (fn == "kv.list")
    kv_list(io, call, args, reply);
  else if (fn == "emit")
    emit(call, args, reply);
  else if (fn == "users.get")
    users_get(io, call, args, reply);
  else if (fn == "users.list")
    users_list(io, call, args, reply);
  else if (fn == "http.request")
    http_request(io, call, args, reply);
  else
    reply(raise("colony." + fn + " is not available"));
}

} // namespace colony::actors::detail
