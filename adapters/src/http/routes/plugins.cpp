// The plugin registry (POST/GET /v1/plugins...) and a tenant's plugins
// (GET/PUT/DELETE /v1/tenants/{t}/plugins/{name}); docs/plugins.md.
#include "groups.hpp"
#include "../core.hpp"

#include <algorithm>
#include <caf/all.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include "colony/actors/plugin/plugin_kit.hpp"
#include "colony/actors/plugin/config_schema.hpp"
#include "colony/actors/plugin/plugin_model.hpp"
#include "colony/protocol/json.hpp"
#include "colony/protocol/time.hpp"
#include "colony/v1/plugin.pb.h"
#include "colony/v1/tenant.pb.h"

namespace colony::adapters::http {

using namespace actors;
using access::permission;

namespace {

void plugin_store_op(api_core& a, const std::shared_ptr<call>& c, plugin_op op,
                     std::function<void(plugin_result&)> ok) {
  a.ask_store<plugin_result>(c, plugin_atom::value, std::move(op), "the plugin registry", std::move(ok));
}

std::string sha256_hex(const std::string& s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), md, &n, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

/// A version as the registry shows it; the source only to platform credentials that ask for it.
nlohmann::json version_json(const v1::PluginVersion& v, bool with_source) {
  auto doc = nlohmann::json::parse(protocol::to_json(v));
  if (!with_source)
    doc.erase("source");
  return doc;
}

std::vector<v1::PluginVersion> parsed_versions(const std::vector<plugin_row>& rows) {
  std::vector<v1::PluginVersion> out;
  for (const auto& r : rows) {
    v1::PluginVersion v;
    if (v.ParseFromString(r.state))
      out.push_back(std::move(v));
  }
  // Semver precedence, oldest first.
  std::stable_sort(out.begin(), out.end(), [](const v1::PluginVersion& x, const v1::PluginVersion& y) {
    auto a = parse_semver(x.version()), b = parse_semver(y.version());
    return a && b && compare(*a, *b) < 0;
  });
  return out;
}

/// The latest release (a pre-release only if there is nothing else).
const v1::PluginVersion* latest(const std::vector<v1::PluginVersion>& vs) {
  for (auto it = vs.rbegin(); it != vs.rend(); ++it)
    if (auto s = parse_semver(it->version()); s && s->pre.empty())
      return &*it;
  return vs.empty() ? nullptr : &vs.back();
}

nlohmann::json summary_json(const std::vector<v1::PluginVersion>& vs) {
  const auto* l = latest(vs);
  auto names = nlohmann::json::array();
  for (const auto& v : vs)
    names.push_back(v.version());
  return {{"name", l->name()},
          {"description", l->description()},
          {"latestVersion", l->version()},
          {"hooks", std::vector<std::string>(l->hooks().begin(), l->hooks().end())},
          {"versions", names}};
}

bool platform_caller(const call& c) { return c.who.is_platform_admin() && c.who.tenant_id.empty(); }

std::optional<std::string> plugin_name(api_core& a, const std::shared_ptr<call>& c) {
  auto name = c->path["name"];
  if (!valid_plugin_name(name)) {
    a.fail(c, 404, "not-found", "Not found", "no plugin named '" + name.substr(0, 64) + "'");
    return std::nullopt;
  }
  return name;
}

void publish(api_core& a, std::shared_ptr<call> c) {
  if (!a.check_json_body(c, false, false))
    return;
  auto req = std::make_shared<v1::PublishPluginRequest>();
  if (!a.parse_body(c, *req))
    return;
  if (!a.ctx.plugins) {
    a.fail(c, 503, "unavailable", "Service unavailable", "this node runs no plugin sandbox");
    return;
  }
  // The source runs once (its chunk returns the hooks) under the sandbox's
  // limits: on a body worker, not on the io thread.
  a.bridges.post_blocking(c, [&a, c, req](caf::event_based_actor*) {
    if (auto err = check_publication(*a.ctx.plugins, *req)) {
      c->respond(api::failure_response(*err, c->req.request_id));
      return;
    }
    v1::PluginVersion v;
    v.set_name(req->name());
    v.set_version(req->version());
    *v.mutable_hooks() = req->hooks();
    *v.mutable_permissions() = req->permissions();
    if (req->has_config_schema())
      *v.mutable_config_schema() = req->config_schema();
    v.set_description(req->description());
    v.set_source(req->source());
    v.set_sha256(sha256_hex(req->source()));
    auto now = protocol::now_us();
    protocol::set_timestamp(*v.mutable_published_at(), now);
    v.set_published_by(c->who.credential);
    plugin_op op;
    op.what = plugin_op::kind::publish;
    op.row = plugin_row{v.name(), v.version(), v.SerializeAsString(), now};
    op.audit.push_back(audit_of(*c, {}, "plugin.published", "plugin:" + v.name() + "@" + v.version(), "success", 201,
                                "sha256 " + v.sha256()));
    auto doc = version_json(v, false);
    plugin_store_op(a, c, std::move(op), [&a, c, doc, v](plugin_result& r) {
      if (r.status == store_status::duplicate) {
        a.fail(c, 409, "conflict", "Conflict",
               "version " + v.version() + " of plugin '" + v.name() +
                 "' is published already; a version never changes, publish a new one");
        return;
      }
      c->respond(created(doc, "/v1/plugins/" + v.name() + "/versions/" + v.version()));
    });
  });
}

nlohmann::json cursor_json(const plugin_cursor& k) {
  return {
    {"position", k.position},
    {"paused", k.paused},
    {"attempts", k.attempts},
    {"lastError", k.last_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(k.last_error)},
    {"nextAttemptAt",
     k.next_attempt_us == 0 ? nlohmann::json(nullptr) : nlohmann::json(protocol::format_rfc3339(k.next_attempt_us))}};
}

void list_plugins(api_core& a, std::shared_ptr<call> c) {
  int limit = 50;
  if (!a.int_param(c, "limit", 1, 200, limit))
    return;
  plugin_op op;
  op.what = plugin_op::kind::list;
  op.limit = limit;
  if (auto it = c->query.find("after"); it != c->query.end())
    op.after = it->second;
  plugin_store_op(a, c, std::move(op), [c, limit](plugin_result& r) {
    std::map<std::string, std::vector<plugin_row>> by_name;
    for (auto& row : r.rows)
      by_name[row.name].push_back(std::move(row));
    auto data = nlohmann::json::array();
    for (const auto& [name, rows] : by_name)
      if (auto vs = parsed_versions(rows); !vs.empty())
        data.push_back(summary_json(vs));
    nlohmann::json doc{{"data", data}};
    doc["nextAfter"] =
      static_cast<int>(by_name.size()) == limit ? nlohmann::json(by_name.rbegin()->first) : nlohmann::json(nullptr);
    c->respond(json(200, doc.dump(-1, ' ', false, replace_invalid)));
  });
}

void with_versions(api_core& a, const std::shared_ptr<call>& c, const std::string& name,
                   std::function<void(std::vector<v1::PluginVersion>&)> next) {
  plugin_op op;
  op.what = plugin_op::kind::versions;
  op.name = name;
  plugin_store_op(a, c, std::move(op), [&a, c, name, next = std::move(next)](plugin_result& r) {
    auto vs = parsed_versions(r.rows);
    if (vs.empty()) {
      a.fail(c, 404, "not-found", "Not found", "no plugin named '" + name + "'");
      return;
    }
    next(vs);
  });
}

void get_plugin(api_core& a, std::shared_ptr<call> c) {
  auto name = plugin_name(a, c);
  if (!name)
    return;
  with_versions(a, c, *name, [c](std::vector<v1::PluginVersion>& vs) {
    auto doc = summary_json(vs);
    doc["latest"] = version_json(*latest(vs), false);
    c->respond(json(200, doc.dump(-1, ' ', false, replace_invalid)));
  });
}

void list_versions(api_core& a, std::shared_ptr<call> c) {
  auto name = plugin_name(a, c);
  if (!name)
    return;
  with_versions(a, c, *name, [c](std::vector<v1::PluginVersion>& vs) {
    auto data = nlohmann::json::array();
    for (const auto& v : vs)
      data.push_back(version_json(v, false));
    c->respond(json(200, nlohmann::json{{"data", data}}.dump(-1, ' ', false, replace_invalid)));
  });
}

void get_version(api_core& a, std::shared_ptr<call> c) {
  auto name = plugin_name(a, c);
  if (!name)
    return;
  plugin_op op;
  op.what = plugin_op::kind::get;
  op.name = *name;
  op.version = c->path["version"];
  plugin_store_op(a, c, std::move(op), [&a, c, name = *name](plugin_result& r) {
    v1::PluginVersion v;
    if (r.rows.empty() || !v.ParseFromString(r.rows.front().state)) {
      a.fail(c, 404, "not-found", "Not found",
             "plugin '" + name + "' has no version '" + c->path["version"].substr(0, 64) + "'");
      return;
    }
    c->respond(json(200, version_json(v, platform_caller(*c)).dump(-1, ' ', false, replace_invalid)));
  });
}

// -- a tenant's plugins --------------------------------------------------------

void with_tenant_state(api_core& a, const std::shared_ptr<call>& c, std::function<void(const v1::Tenant&)> next) {
  a.with_tenant(c, [&a, c, next = std::move(next)](std::string tid) {
    command cmd;
    cmd.what = op::get;
    a.call_entity(c, entity_key{entity_kind::tenant, tid, tid}, std::move(cmd),
                  [c, next](entity_reply& r) { next(static_cast<const v1::Tenant&>(*r.entity)); });
  });
}

void list_tenant_plugins(api_core& a, std::shared_ptr<call> c) {
  with_tenant_state(a, c, [c](const v1::Tenant& t) {
    std::string body = "{\"data\":[";
    for (int i = 0; i < t.plugins_size(); ++i)
      body += (i == 0 ? "" : ",") + protocol::to_json(t.plugins(i));
    c->respond(json(200, body + "]}"));
  });
}

void get_tenant_plugin(api_core& a, std::shared_ptr<call> c) {
  auto name = plugin_name(a, c);
  if (!name)
    return;
  with_tenant_state(a, c, [&a, c, name = *name](const v1::Tenant& t) {
    const auto* b = find_binding(t, name);
    if (b == nullptr) {
      a.fail(c, 404, "not-found", "Not found", "plugin '" + name + "' is not enabled for this tenant");
      return;
    }
    auto doc = protocol::to_json(*b);
    if (!has_hook(*b, plugin_hook::on_event)) {
      c->respond(json(200, doc));
      return;
    }
    // on_event: where its cursor stands.
    plugin_op op;
    op.what = plugin_op::kind::cursor;
    op.tenant_id = t.id();
    op.name = name;
    plugin_store_op(a, c, std::move(op), [c, doc = std::move(doc)](plugin_result& r) mutable {
      auto j = nlohmann::json::parse(doc);
      if (!r.cursors.empty())
        j["events"] = cursor_json(r.cursors.front());
      c->respond(json(200, j.dump(-1, ' ', false, replace_invalid)));
    });
  });
}

/// GET .../plugins/{name}/dead-letters: the events on_event gave up on, oldest first.
void list_dead_letters(api_core& a, std::shared_ptr<call> c) {
  auto name = plugin_name(a, c);
  if (!name)
    return;
  int limit = 50;
  if (!a.int_param(c, "limit", 1, 200, limit))
    return;
  a.with_tenant(c, [&a, c, name = *name, limit](std::string tid) {
    plugin_op op;
    op.what = plugin_op::kind::dead_letters;
    op.tenant_id = tid;
    op.name = name;
    op.limit = limit;
    if (auto it = c->query.find("after"); it != c->query.end())
      op.after = it->second;
    plugin_store_op(a, c, std::move(op), [c, limit](plugin_result& r) {
      auto data = nlohmann::json::array();
      for (const auto& d : r.dead_letters) {
        auto ev = nlohmann::json::parse(protocol::bytes_to_json("colony.v1.Event", d.event), nullptr, false);
        data.push_back({{"id", d.id},
                        {"eventId", d.event_id},
                        {"eventType", d.event_type},
                        {"position", d.position},
                        {"error", d.error},
                        {"attempts", d.attempts},
                        {"createdAt", protocol::format_rfc3339(d.created_us)},
                        {"event", ev.is_discarded() ? nlohmann::json(nullptr) : ev}});
      }
      nlohmann::json doc{{"data", data}};
      doc["nextAfter"] = static_cast<int>(r.dead_letters.size()) == limit ? nlohmann::json(r.dead_letters.back().id)
                                                                          : nlohmann::json(nullptr);
      c->respond(json(200, doc.dump(-1, ' ', false, replace_invalid)));
    });
  });
}

void enable(api_core& a, std::shared_ptr<call> c) {
  auto name = plugin_name(a, c);
  if (!name || !a.check_json_body(c, false, false))
    return;
  auto req = std::make_shared<v1::EnablePluginRequest>();
  if (!a.parse_body(c, *req))
    return;
  failure bad = fail(errc::invalid, "the plugin cannot be enabled");
  if (!parse_semver(req->version()))
    bad.errors.push_back({"version", "the version to enable, such as 1.0.0"});
  if (!req->failure_policy().empty() && req->failure_policy() != "fail" && req->failure_policy() != "ignore")
    bad.errors.push_back({"failurePolicy", "fail or ignore"});
  if (!bad.errors.empty()) {
    c->respond(api::failure_response(bad, c->req.request_id));
    return;
  }
  a.with_existing_tenant(c, [&a, c, req, name = *name](std::string tid) {
    plugin_op op;
    op.what = plugin_op::kind::get;
    op.name = name;
    op.version = req->version();
    plugin_store_op(a, c, std::move(op), [&a, c, req, name, tid](plugin_result& r) {
      v1::PluginVersion v;
      if (r.rows.empty() || !v.ParseFromString(r.rows.front().state)) {
        failure f = fail(errc::invalid, "plugin '" + name + "' has no version " + req->version());
        f.errors.push_back({"version", "not in the registry"});
        c->respond(api::failure_response(f, c->req.request_id));
        return;
      }
      auto config = req->has_config() ? protocol::to_json(req->config()) : std::string{"{}"};
      if (v.has_config_schema())
        if (auto errs = validate_config(protocol::to_json(v.config_schema()), config); !errs.empty()) {
          failure f = fail(errc::invalid,
                           "config does not match the configSchema of " + name + "@" + v.version() + ": " +
                             errs.front().field + " " + errs.front().message);
          f.errors = std::move(errs);
          c->respond(api::failure_response(f, c->req.request_id));
          return;
        }
      auto b = std::make_shared<v1::PluginBinding>();
      b->set_name(name);
      b->set_version(v.version());
      *b->mutable_hooks() = v.hooks();
      *b->mutable_permissions() = v.permissions();
      *b->mutable_config() = req->config();
      b->set_failure_policy(req->failure_policy().empty() ? "fail" : req->failure_policy());
      command cmd;
      cmd.what = op::enable_plugin;
      cmd.text = name;
      cmd.payload = b;
      cmd.if_match = if_match(c);
      a.send(c, entity_key{entity_kind::tenant, tid, tid}, std::move(cmd), [name](entity_reply& rep) {
        const auto& t = static_cast<const v1::Tenant&>(*rep.entity);
        const auto* now = find_binding(t, name);
        bool fresh =
          now != nullptr && protocol::timestamp_us(now->enabled_at()) == protocol::timestamp_us(now->updated_at());
        auto resp = json(fresh ? 201 : 200, now ? protocol::to_json(*now) : "{}");
        if (fresh)
          resp.headers.emplace_back("Location", "/v1/tenants/" + t.id() + "/plugins/" + name);
        return resp;
      });
    });
  });
}

void disable(api_core& a, std::shared_ptr<call> c) {
  auto name = plugin_name(a, c);
  if (!name)
    return;
  a.with_tenant(c, [&a, c, name = *name](std::string tid) {
    command cmd;
    cmd.what = op::disable_plugin;
    cmd.text = name;
    cmd.if_match = if_match(c);
    a.send(c, entity_key{entity_kind::tenant, tid, tid}, std::move(cmd), [](entity_reply&) { return no_content(); });
  });
}

// -- a plugin's http hook -------------------------------------------------------

void serve_http_hook(api_core& a, std::shared_ptr<call> c) {
  auto name = plugin_name(a, c);
  if (!name)
    return;
  if (!c->req.body.empty() && protocol::valid_utf8(c->req.body) != c->req.body) {
    a.fail(c, 400, "validation-error", "Bad request", "the body of a request to a plugin must be UTF-8 text");
    return;
  }
  with_tenant_state(a, c, [&a, c, name = *name](const v1::Tenant& t) {
    const auto* b = find_binding(t, name);
    if (b == nullptr || !has_hook(*b, plugin_hook::http)) {
      a.fail(c, 404, "not-found", "Not found", "no plugin '" + name + "' serving http is enabled for this tenant");
      return;
    }
    if (b->suspended()) {
      failure f = fail(errc::plugin_failed,
                       "plugin '" + name + "' is suspended for this tenant: " + b->suspended_reason() +
                         "; a PUT of its binding enables it again");
      f.strings.emplace_back("plugin", name);
      f.strings.emplace_back("fault", "suspended");
      c->respond(api::failure_response(f, c->req.request_id));
      return;
    }
    plugin_http_request req;
    req.method = c->req.method;
    req.path = "/" + c->path["path"];
    nlohmann::json q = nlohmann::json::object();
    for (const auto& [k, v] : c->query)
      q[k] = v;
    req.query_json = q.dump(-1, ' ', false, replace_invalid);
    req.content_type = c->req.content_type;
    req.body = c->req.body;
    req.credential = c->who.credential;
    req.roles = c->who.roles;
    if (c->who.kind == "jwt")
      req.user_id = c->who.subject;
    auto pc = std::make_shared<v1::PluginCall>();
    pc->set_hook(std::string{plugin_hook::http});
    pc->set_args_json("[" + http_request_json(req) + "]");
    *pc->mutable_binding() = *b;
    command cmd;
    cmd.what = op::plugin_call;
    cmd.payload = std::move(pc);
    a.call_entity(c, entity_key{entity_kind::plugin, t.id(), name}, std::move(cmd), [c, name](entity_reply& r) {
      const auto* o = dynamic_cast<const v1::PluginOutcome*>(r.entity.get());
      auto failed = [&](const std::string& why, const std::string& fault) {
        failure f = fail(errc::plugin_failed, "plugin '" + name + "' failed: " + why);
        f.strings.emplace_back("plugin", name);
        f.strings.emplace_back("fault", fault);
        c->respond(api::failure_response(f, c->req.request_id));
      };
      if (o == nullptr) {
        failed("no outcome", "unavailable");
        return;
      }
      if (o->outcome() != "ok") {
        failed(o->reason(), o->fault());
        return;
      }
      auto ans = http_answer(o->results_json());
      if (!ans) {
        failed(ans.error().detail, "answer");
        return;
      }
      api_response resp;
      resp.status = ans.value().status;
      resp.content_type = ans.value().content_type;
      resp.body = std::move(ans.value().body);
      resp.headers = std::move(ans.value().headers);
      c->respond(std::move(resp));
    });
  });
}

} // namespace

void add_plugin_routes(router& r) {
  using p = permission;
  r.add("POST", "/v1/plugins", p::platform, publish);
  r.add("GET", "/v1/plugins", p::catalog, list_plugins);
  r.add("GET", "/v1/plugins/{name}", p::catalog, get_plugin);
  r.add("GET", "/v1/plugins/{name}/versions", p::catalog, list_versions);
  r.add("GET", "/v1/plugins/{name}/versions/{version}", p::catalog, get_version);
  r.add("GET", "/v1/tenants/{tenantId}/plugins", p::tenant_inspect, list_tenant_plugins);
  r.add("GET", "/v1/tenants/{tenantId}/plugins/{name}", p::tenant_inspect, get_tenant_plugin);
  r.add("PUT", "/v1/tenants/{tenantId}/plugins/{name}", p::manage, enable);
  r.add("DELETE", "/v1/tenants/{tenantId}/plugins/{name}", p::manage, disable);
  r.add("GET", "/v1/tenants/{tenantId}/plugins/{name}/dead-letters", p::tenant_inspect, list_dead_letters);
  for (const char* m : {"GET", "POST", "PUT", "PATCH", "DELETE"})
    r.add_tail(m, "/v1/tenants/{tenantId}/x/{name}/{path}", p::tenant_read, serve_http_hook);
}

} // namespace colony::adapters::http
