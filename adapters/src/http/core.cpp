#include "core.hpp"
#include "params.hpp"
#include "routes/groups.hpp"

#include <algorithm>
#include <thread>
#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "colony/protocol/json.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/log.hpp"

namespace colony::adapters::http {

using namespace actors;

// -- call ------------------------------------------------------------------------

void call::respond(api_response r) {
  if (before_answer) {
    auto hook = std::exchange(before_answer, nullptr);
    hook(std::move(r), [this](api_response a) { send_answer(std::move(a)); });
    return;
  }
  send_answer(std::move(r));
}

void call::send_answer(api_response r) {
  if (answered.exchange(true)) {
    log::error("a second answer to a request was dropped", {{"request_id", req.request_id}, {"route", route}});
    return;
  }
  r.route = route;
  for (auto& h : rate_headers)
    r.headers.push_back(h);
  done(std::move(r));
}

// -- answers ---------------------------------------------------------------------

api_response json(int status, std::string body) {
  api_response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

api_response created(const nlohmann::json& doc, const std::string& location) {
  auto r = json(201, doc.dump(-1, ' ', false, replace_invalid));
  r.headers.emplace_back("Location", location);
  return r;
}

api_response no_content() { return api_response{204, "", "", {}, {}, {}, {}}; }

api_response entity_response(const entity_reply& r, int status) {
  auto resp = json(status, r.entity ? protocol::to_json(*r.entity) : protocol::bytes_to_json(r.type, *r.bytes));
  resp.headers.emplace_back("ETag", "\"" + std::to_string(r.version) + "\"");
  return resp;
}

api_response read_response(const call& c, const entity_reply& r) {
  if (none_match_hits(c.req.if_none_match, r.version)) {
    api_response resp{304, "", "", {}, {}, {}, {}};
    resp.headers.emplace_back("ETag", "\"" + std::to_string(r.version) + "\"");
    return resp;
  }
  return entity_response(r, 200);
}

std::vector<std::uint32_t> if_match(const std::shared_ptr<call>& c) { return if_match_versions(c->req.if_match); }

/// An audit record of this request.
audit_record audit_of(const call& c, std::string tenant, std::string action, std::string target, std::string outcome,
                      int status, std::string detail) {
  audit_record a;
  a.id = protocol::new_uuid_v7();
  a.tenant_id = std::move(tenant);
  a.at_us = protocol::now_us();
  a.actor = c.who.credential.empty() ? std::string{"anonymous"} : c.who.credential;
  a.action = std::move(action);
  a.target = protocol::valid_utf8(target);
  a.request_id = c.req.request_id;
  a.client = c.req.client_addr;
  a.outcome = std::move(outcome);
  a.status = status;
  a.detail = protocol::valid_utf8(detail.substr(0, 300));
  return a;
}

bool owner_powers(const call& c) {
  return (c.who.is_platform_admin() && c.who.tenant_id.empty()) || c.who.has(access::owner);
}

api_response internal_error(const call& c) {
  return api::problem(500, "internal-error", "Internal error",
                      "the request failed unexpectedly; quote request id " + c.req.request_id, c.req.request_id);
}

// -- api_core --------------------------------------------------------------------

api_core::api_core(caf::actor_system& s, const http_options& o, api_context c)
  : sys(s), opts(o), ctx(std::move(c)), bridges(s, o.threads) {
  add_all_routes(routes);
  started_us = protocol::now_us();
  sessions = std::make_unique<console_sessions>(ctx.secrets);
  hub = std::make_unique<console_hub>(*this);
  meter = std::make_unique<api_meter>(s, ctx.store, ctx.metering_interval);
  audit = std::make_unique<audit_trail>(s, ctx.store, std::chrono::milliseconds(200));
  if (ctx.cluster) { // a key revoked through another node stops working here too
    revoked_sub = ctx.cluster->subscribe(revoked_topic, [this](const std::string& kid) { forget_api_key(kid); });
    limits_sub =
      ctx.cluster->serve(limits_topic, [this](const std::string& payload, std::function<void(std::string)> reply) {
        ++serving; // the continuations use this api_core: it outlives them
        serve_limits(payload, [this, reply = std::move(reply)](std::string answer) {
          reply(std::move(answer));
          --serving;
        });
      });
    serve_admin_topics(*this);
  }
}

api_core::~api_core() {
  if (ctx.cluster) {
    ctx.cluster->unsubscribe(revoked_sub);
    ctx.cluster->unsubscribe(limits_sub);
    for (auto id : admin_subs)
      ctx.cluster->unsubscribe(id);
    // No new checks now; the running ones end within the store's request
    // time-out (10 s) at the latest.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(12);
    while (serving.load() > 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (serving.load() > 0)
      log::warn("limit checks for other nodes still running at shutdown", {{"checks", serving.load()}});
  }
}

void api_core::fail(const std::shared_ptr<call>& c, int status, std::string_view type, std::string_view title,
                    std::string detail) {
  c->respond(api::problem(status, type, title, detail, c->req.request_id));
}

void api_core::invalid_param(const std::shared_ptr<call>& c, const std::string& name, const std::string& message) {
  auto r = api::problem(400, "invalid-parameter", "Invalid query parameter", name + ": " + message, c->req.request_id);
  auto doc = nlohmann::json::parse(r.body);
  doc["errors"] = nlohmann::json::array({{{"field", name}, {"message", message}}});
  r.body = doc.dump(-1, ' ', false, replace_invalid);
  c->respond(std::move(r));
}

void api_core::forbidden(const std::shared_ptr<call>& c, std::string detail) {
  log::info("permission denied",
            {{"request_id", c->req.request_id},
             {"credential", c->who.credential},
             {"route", c->route},
             {"method", c->req.method}});
  fail(c, 403, "forbidden", "Forbidden", std::move(detail));
}

/// The gate of every JSON body the API takes (docs/api.md, "Request
/// bodies"): the media type (application/json, or merge-patch with
/// `merge`; a charset other than UTF-8 is 415), then protocol::check_json,
/// linear in the size, before any parser sees the body: too deep, too many
/// values, a duplicate key or bad syntax are a 400 naming the limit.
bool api_core::check_json_body(const std::shared_ptr<call>& c, bool merge, bool optional_body) {
  if (optional_body && c->req.body.empty())
    return true;
  auto ct = c->req.content_type;
  auto semi = ct.find(';');
  auto mt = normalize_email(ct.substr(0, semi));
  while (!mt.empty() && mt.back() == ' ')
    mt.pop_back();
  if (mt != "application/json" && !(merge && mt == "application/merge-patch+json")) {
    fail(c, 415, "unsupported-media-type", "Unsupported media type",
         std::string{"send the body as application/json"} + (merge ? " or application/merge-patch+json" : "") +
           (ct.empty() ? " (no Content-Type was given)" : " (got '" + ct.substr(0, 100) + "')"));
    return false;
  }
  if (semi != std::string::npos) {
    auto charset = media_type_param(std::string_view{ct}.substr(semi), "charset");
    if (charset && *charset != "utf-8" && *charset != "utf8") {
      fail(c, 415, "unsupported-media-type", "Unsupported media type",
           "JSON bodies are UTF-8 (RFC 8259); send charset=utf-8 or no charset");
      return false;
    }
  }
  if (auto err = protocol::check_json(c->req.body, true)) {
    failure f = actors::fail(errc::malformed, err->field.empty() ? err->message : err->field + ": " + err->message);
    f.errors.push_back(*err);
    if (err->kind == protocol::json_error::too_deep)
      f.numbers.emplace_back("maxDepth", static_cast<std::int64_t>(protocol::json_limits{}.max_depth));
    if (err->kind == protocol::json_error::too_many_values)
      f.numbers.emplace_back("maxValues", static_cast<std::int64_t>(protocol::json_limits{}.max_values));
    c->respond(api::failure_response(f, c->req.request_id));
    return false;
  }
  return true;
}

bool api_core::parse_body(const std::shared_ptr<call>& c, google::protobuf::Message& msg) {
  if (auto err = protocol::from_json(c->req.body, msg)) {
    failure f = actors::fail(errc::malformed, err->field.empty() ? err->message : err->field + ": " + err->message);
    f.errors.push_back(*err);
    c->respond(api::failure_response(f, c->req.request_id));
    return false;
  }
  return true;
}

/// Reads limit, sort and cursor; false if an answer was already sent.
bool api_core::page_params(const std::shared_ptr<call>& c, list_query& q, const std::vector<std::string>& sortable) {
  if (!int_param(c, "limit", 1, 500, q.limit))
    return false;
  if (auto it = c->query.find("sort"); it != c->query.end()) {
    auto s = it->second;
    q.descending = !s.empty() && s.front() == '-';
    if (q.descending)
      s.erase(0, 1);
    if (std::find(sortable.begin(), sortable.end(), s) == sortable.end()) {
      std::string list;
      for (const auto& f : sortable)
        list += (list.empty() ? "" : ", ") + f;
      invalid_param(c, "sort", "must be one of " + list + " (prefix - for descending)");
      return false;
    }
    q.sort_field = s;
  }
  if (auto it = c->query.find("cursor"); it != c->query.end()) {
    if (auto err = decode_list_cursor(it->second, q)) {
      invalid_param(c, "cursor", *err);
      return false;
    }
  }
  return true;
}

void api_core::run_list(const std::shared_ptr<call>& c, list_query q,
                        std::function<std::string(const list_row&)> render) {
  ask_store_raw<row_page>(
    c,
    [c, q, render](row_page& page) {
      if (page.status != store_status::ok) {
        c->respond(api::failure_response(page.status == store_status::unavailable
                                           ? actors::fail(errc::unavailable, "the store is unavailable; retry later")
                                           : actors::fail(errc::internal, "the list could not be read"),
                                         c->req.request_id));
        return;
      }
      bool more = page.rows.size() > static_cast<std::size_t>(q.limit);
      if (more)
        page.rows.resize(static_cast<std::size_t>(q.limit));
      std::string body = "{\"data\":[";
      bool first = true;
      for (const auto& row : page.rows) {
        if (!first)
          body += ',';
        first = false;
        body += render(row);
      }
      body += "],\"nextCursor\":";
      if (more)
        body += "\"" + encode_list_cursor(q, page.rows.back()) + "\"";
      else
        body += "null";
      body += "}";
      c->respond(json(200, std::move(body)));
    },
    list_atom::value, q);
}

} // namespace colony::adapters::http
