// colonyctl: the console's CLI, a client of a node's /v1/admin/* and
// /v1/cluster (docs/console.md). Arguments with CLI11, the screen of `top`
// with ncurses, HTTP with Beast, JSON with nlohmann-json.
//
// Exit codes (stable): 0 done; 1 the request failed (no connection, or the
// node answered an error: its problem is printed); 2 usage (a bad argument,
// option or URL); 3 done, but the answer is partial (a member did not
// answer); 4 not found (404).
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "client.hpp"
#include "plugin_kit.hpp"
#include "tail.hpp"
#include "top.hpp"
#include "views.hpp"

namespace {

using colony::ctl::client;
using njson = nlohmann::json;

constexpr int exit_failed = 1, exit_usage = 2, exit_partial = 3, exit_not_found = 4;

struct options {
  std::string url;
  std::string token;
  std::string token_file;
  std::string cacert;
  std::string output = "table";
  double timeout_s = 10;
};

std::string env_or(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string{v} : std::move(fallback);
}

/// The problem of an error answer as one line.
std::string problem_line(const colony::ctl::reply& r) {
  auto doc = njson::parse(r.body, nullptr, false);
  if (doc.is_object() && doc.contains("title"))
    return std::to_string(r.status) + " " + doc.value("title", std::string{}) + ": " +
      doc.value("detail", std::string{}) + (doc.contains("type") ? " [" + doc.value("type", std::string{}) + "]" : "");
  return std::to_string(r.status) + " " + r.body.substr(0, 200);
}

/// GET (or POST) `target`, print it with `view` (or as JSON), return the exit code.
int run(const client& cl, const options& o, const std::string& method, const std::string& target,
        std::vector<std::string> (*view)(const njson&)) {
  colony::ctl::reply r;
  try {
    r = cl.request(method, target);
  } catch (const colony::ctl::transport_error& e) {
    std::cerr << "colonyctl: " << e.what() << "\n";
    return exit_failed;
  }
  if (r.status >= 400) {
    std::cerr << "colonyctl: " << problem_line(r) << "\n";
    return r.status == 404 ? exit_not_found : exit_failed;
  }
  auto doc = njson::parse(r.body, nullptr, false);
  if (doc.is_discarded()) {
    std::cerr << "colonyctl: the answer is not JSON (" << r.content_type << ")\n";
    return exit_failed;
  }
  if (o.output == "json")
    std::cout << doc.dump(2) << "\n";
  else
    for (const auto& line : view(doc))
      std::cout << line << "\n";
  return doc.value("partial", false) ? exit_partial : 0;
}

/// A drain's or undrain's answer: the member's status afterwards.
std::vector<std::string> status_view(const njson& doc) {
  return {doc.value("nodeName", std::string{}) + ": " + doc.value("status", std::string{})};
}

/// A passivation's answer: which actor went, from which node.
std::vector<std::string> passivated_view(const njson& doc) {
  return {doc.value("kind", std::string{}) + "/" + doc.value("id", std::string{}) + ": passivated on " +
          doc.value("node", std::string{})};
}

std::vector<std::string> actors_view_once(const njson& doc) { return colony::ctl::actors_view(doc); }

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"colonyctl: inspect and operate a Colony cluster through a node's API (docs/console.md)"};
  app.set_version_flag("--version", std::string{COLONY_VERSION});
  app.require_subcommand(1);
  // The global options (--url, -o, --timeout ...) also after the command:
  // subcommands made after this inherit it and pass what they don't know up.
  app.fallthrough();
  options o;
  app.add_option("--url", o.url, "the node's API, e.g. http://127.0.0.1:8080 (default: $COLONY_URL)");
  app.add_option("--token", o.token, "a platform credential: API key or JWT (default: $COLONY_TOKEN)");
  app.add_option("--token-file", o.token_file, "read the credential from this file instead")->check(CLI::ExistingFile);
  app.add_option("--cacert", o.cacert, "PEM file of the CAs to trust for https:// (default: the system's)")
    ->check(CLI::ExistingFile);
  app.add_option("-o,--output", o.output, "table or json")->check(CLI::IsMember({"table", "json"}));
  app.add_option("--timeout", o.timeout_s, "seconds to wait for an answer")->check(CLI::Range(0.1, 120.0));

  auto* nodes = app.add_subcommand("nodes", "every member: status, version, uptime, lease, shards, live actors");
  auto* shards = app.add_subcommand("shards", "shards per member against the placement rule, moving, unowned");
  auto* actors = app.add_subcommand("actors", "live actors");
  actors->require_subcommand(1);
  std::int64_t top_n = 10;
  auto* actors_top = actors->add_subcommand("top", "live actors by kind and node, and the top tenants");
  actors_top->add_option("-n,--top", top_n, "how many tenants")->check(CLI::Range(1, 100));
  auto* crashes = app.add_subcommand("crashes", "the last entity crashes of every node");
  std::int64_t crash_limit = 20;
  crashes->add_option("-n,--limit", crash_limit, "how many")->check(CLI::Range(1, 64));
  auto* mailboxes = app.add_subcommand("mailboxes", "mailbox depths per kind, the deepest actors, which grow");
  std::int64_t mailbox_top = 10;
  mailboxes->add_option("-n,--top", mailbox_top, "how many of the deepest")->check(CLI::Range(1, 100));
  auto* stores = app.add_subcommand(
    "stores", "per node: store commits and latency, outbox backlog, Kafka brokers and lag, webhooks");
  auto* tenant = app.add_subcommand("tenant", "one tenant");
  tenant->require_subcommand(1);
  std::string tenant_id;
  auto* tenant_show = tenant->add_subcommand("show", "where a tenant lives, its live actors, its usage");
  tenant_show->add_option("tenant", tenant_id, "the tenant's id or slug")->required();
  auto* actor = app.add_subcommand("actor", "one actor");
  actor->require_subcommand(1);
  std::string actor_kind, actor_id, actor_tenant;
  auto* actor_show = actor->add_subcommand("show", "one actor by its exact key: node, live, commands, state");
  actor_show->add_option("kind", actor_kind, "tenant or user")->required();
  actor_show->add_option("id", actor_id, "the actor's id")->required();
  actor_show->add_option("--tenant", actor_tenant, "the tenant of a user actor");
  bool yes = false;
  std::string node_name;
  auto* actor_passivate =
    actor->add_subcommand("passivate", "ask a live actor to go now (it reloads on its next command; audited)");
  actor_passivate->add_option("kind", actor_kind, "tenant or user")->required();
  actor_passivate->add_option("id", actor_id, "the actor's id")->required();
  actor_passivate->add_option("--tenant", actor_tenant, "the tenant of a user actor");
  actor_passivate->add_flag("--yes", yes, "really do it");
  auto* drain = app.add_subcommand("drain", "hand a node's shards to the other members (it keeps running)");
  drain->add_option("node", node_name, "the member's node name")->required();
  drain->add_flag("--yes", yes, "really do it");
  auto* undrain = app.add_subcommand("undrain", "let a drained node take its shards back");
  undrain->add_option("node", node_name, "the member's node name")->required();
  undrain->add_flag("--yes", yes, "really do it");
  auto* events = app.add_subcommand("events", "the committed events");
  events->require_subcommand(1);
  colony::ctl::tail_options tail;
  auto* events_tail = events->add_subcommand(
    "tail", "the latest events, then each new one as it commits (^C stops; -o json: one per line)");
  events_tail->add_option("--tenant", tail.tenant, "only this tenant's (its id or slug)");
  events_tail->add_option("--type", tail.type, "only this type, e.g. user.created");
  events_tail->add_option("--count", tail.count, "stop after this many")->check(CLI::Range(1, 1000000));
  events_tail->add_option("--after", tail.after, "start after this feed position (instead of the latest events)")
    ->check(CLI::NonNegativeNumber);
  double interval = 2;
  auto* top = app.add_subcommand("top", "a live full-screen view of the cluster (q quits)");
  top->add_option("-i,--interval", interval, "seconds between samples")->check(CLI::Range(0.5, 60.0));

  auto* plugin = app.add_subcommand("plugin", "the plugin kit: make, test and publish a plugin (docs/plugins.md)");
  plugin->require_subcommand(1);
  std::string plugin_name, plugin_parent, plugin_dir, colonyd_path, plugin_config;
  std::vector<std::string> plugin_dirs, plugin_settings;
  auto* plugin_new = plugin->add_subcommand("new", "make a plugin directory (plugin.json, plugin.lua, tests/)");
  plugin_new->add_option("name", plugin_name, "the plugin's name")->required();
  plugin_new->add_option("--dir", plugin_parent, "where to make it (default: here)");
  auto* plugin_test = plugin->add_subcommand(
    "test", "run each directory's tests/*.json in the node's sandbox, with its limits (runs colonyd plugin-test)");
  plugin_test->add_option("dirs", plugin_dirs, "plugin directories")->required();
  plugin_test->add_option("--colonyd", colonyd_path,
                          "the colonyd to run (default: $COLONYD, next to colonyctl, $PATH)");
  plugin_test->add_option("--set", plugin_settings, "a node option for the limits, e.g. plugins.instructions=1000000");
  plugin_test->add_option("--config", plugin_config, "a node configuration file to take the limits from")
    ->check(CLI::ExistingFile);
  auto* plugin_publish = plugin->add_subcommand("publish", "POST /v1/plugins with the directory's manifest and source");
  plugin_publish->add_option("dir", plugin_dir, "the plugin directory")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    auto code = app.exit(e);
    return code == 0 ? 0 : exit_usage;
  }
  if (*plugin_new)
    return colony::ctl::plugin_new(plugin_name, plugin_parent);
  if (*plugin_test)
    return colony::ctl::plugin_test(plugin_dirs, colonyd_path, plugin_settings, plugin_config);
  o.url = o.url.empty() ? env_or("COLONY_URL", "http://127.0.0.1:8080") : o.url;
  o.token = o.token.empty() ? env_or("COLONY_TOKEN", "") : o.token;
  if (!o.token_file.empty()) {
    std::ifstream f(o.token_file);
    std::getline(f, o.token);
  }
  colony::ctl::endpoint ep;
  try {
    ep = colony::ctl::parse_url(o.url);
  } catch (const std::invalid_argument& e) {
    std::cerr << "colonyctl: --url: " << e.what() << "\n";
    return exit_usage;
  }
  client cl{ep, o.token, o.cacert, std::chrono::milliseconds(static_cast<std::int64_t>(o.timeout_s * 1000))};
  using namespace colony::ctl;
  if (*nodes)
    return run(cl, o, "GET", "/v1/admin/nodes", nodes_view);
  if (*shards)
    return run(cl, o, "GET", "/v1/cluster", shards_view);
  if (*actors_top)
    return run(cl, o, "GET", "/v1/admin/actors?top=" + std::to_string(top_n), actors_view_once);
  if (*crashes)
    return run(cl, o, "GET", "/v1/admin/crashes?limit=" + std::to_string(crash_limit), crashes_view);
  if (*stores)
    return run(cl, o, "GET", "/v1/admin/stores", stores_view);
  if (*mailboxes)
    return run(cl, o, "GET", "/v1/admin/mailboxes?top=" + std::to_string(mailbox_top), mailboxes_view);
  if (*tenant_show)
    return run(cl, o, "GET", "/v1/admin/tenants/" + encode(tenant_id), tenant_view);
  if (*actor_show)
    return run(cl, o, "GET",
               "/v1/admin/actors/" + encode(actor_kind) + "/" + encode(actor_id) +
                 (actor_tenant.empty() ? "" : "?tenantId=" + encode(actor_tenant)),
               actor_view);
  if (*actor_passivate) {
    if (!yes) {
      std::cerr << "colonyctl: passivate ends a live actor: add --yes\n";
      return exit_usage;
    }
    return run(cl, o, "POST",
               "/v1/admin/actors/" + encode(actor_kind) + "/" + encode(actor_id) + "/passivate" +
                 (actor_tenant.empty() ? "" : "?tenantId=" + encode(actor_tenant)),
               passivated_view);
  }
  if (*drain || *undrain) {
    if (!yes) {
      std::cerr << "colonyctl: " << (*drain ? "drain" : "undrain") << " changes the cluster: add --yes\n";
      return exit_usage;
    }
    return run(cl, o, "POST", "/v1/cluster/members/" + encode(node_name) + (*drain ? "/drain" : "/undrain"),
               status_view);
  }
  if (*events_tail) {
    tail.json = o.output == "json";
    try {
      return run_events_tail(cl, tail);
    } catch (const colony::ctl::transport_error& e) {
      std::cerr << "colonyctl: " << e.what() << "\n";
      return exit_failed;
    }
  }
  if (*plugin_publish)
    return colony::ctl::plugin_publish(cl, plugin_dir, o.output == "json");
  if (*top)
    return run_top(cl, std::chrono::milliseconds(static_cast<std::int64_t>(interval * 1000)));
  return exit_usage;
}
