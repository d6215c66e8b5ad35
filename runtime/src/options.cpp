#include "options.hpp"

#include <ctime>
#include <iomanip>

#include <caf/actor_system_config.hpp>
#include <caf/config_value.hpp>
#include <caf/settings.hpp>
#include <caf/uri.hpp>
#include <algorithm>
#include <charconv>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>

namespace colony::runtime::detail {

std::string env_name(const std::string& name) {
  std::string out = "COLONY_";
  for (char c : name)
    out += (c == '.' || c == '-') ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::optional<std::int64_t> parse_int(const std::string& s) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size())
    return std::nullopt;
  return v;
}

/// "30s", "500ms", "5min", "2h", or a plain number of milliseconds.
std::optional<std::chrono::milliseconds> parse_duration(const std::string& s) {
  std::size_t i = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])))
    ++i;
  if (i == 0)
    return std::nullopt;
  auto n = parse_int(s.substr(0, i));
  if (!n)
    return std::nullopt;
  auto unit = s.substr(i);
  if (unit == "ms" || unit.empty())
    return std::chrono::milliseconds(*n);
  if (unit == "s")
    return std::chrono::milliseconds(*n * 1000);
  if (unit == "min")
    return std::chrono::milliseconds(*n * 60'000);
  if (unit == "h")
    return std::chrono::milliseconds(*n * 3'600'000);
  return std::nullopt;
}

/// "1048576", "512KiB", "1MiB".
std::optional<std::int64_t> parse_size(const std::string& s) {
  for (auto [suffix, mult] : {std::pair{"KiB", 1024LL}, {"MiB", 1024LL * 1024}, {"GiB", 1024LL * 1024 * 1024}}) {
    std::string suf = suffix;
    if (s.size() > suf.size() && s.ends_with(suf)) {
      auto n = parse_int(s.substr(0, s.size() - suf.size()));
      return n ? std::optional<std::int64_t>(*n * mult) : std::nullopt;
    }
  }
  return parse_int(s);
}

std::string format_duration(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms % 3'600'000 == 0 && ms != 0)
    return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0 && ms != 0)
    return std::to_string(ms / 60'000) + "min";
  if (ms % 1000 == 0)
    return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

template <class Int>
option int_opt(std::string name, std::string desc, std::int64_t min, std::int64_t max, Int node_config::*member,
               kind type = kind::integer) {
  option o{std::move(name), type, std::move(desc), min, max, {}, false, {}, {}};
  o.set = [member, min, max, type](node_config& c, const std::string& v) -> std::optional<std::string> {
    auto n = type == kind::size ? parse_size(v) : parse_int(v);
    if (!n)
      return "'" + v + "' is not " + (type == kind::size ? "a size (bytes, or with KiB/MiB)" : "an integer");
    if (*n < min || *n > max)
      return "'" + v + "' is out of range [" + std::to_string(min) + ", " + std::to_string(max) + "]";
    c.*member = static_cast<Int>(*n);
    return std::nullopt;
  };
  o.get = [member](const node_config& c) { return std::to_string(c.*member); };
  return o;
}

option duration_opt(std::string name, std::string desc, std::chrono::milliseconds min, std::chrono::milliseconds max,
                    std::chrono::milliseconds node_config::*member) {
  option o{std::move(name), kind::duration, std::move(desc), min.count(), max.count(), {}, false, {}, {}};
  o.set = [member, min, max](node_config& c, const std::string& v) -> std::optional<std::string> {
    auto d = parse_duration(v);
    if (!d)
      return "'" + v + "' is not a duration (e.g. 500ms, 30s, 5min, 1h)";
    if (*d < min || *d > max)
      return "'" + v + "' is out of range [" + format_duration(min) + ", " + format_duration(max) + "]";
    c.*member = *d;
    return std::nullopt;
  };
  o.get = [member](const node_config& c) { return format_duration(c.*member); };
  return o;
}

option string_opt(std::string name, std::string desc, std::string node_config::*member,
                  std::function<std::optional<std::string>(node_config&, const std::string&)> check = {}) {
  option o{std::move(name), kind::string, std::move(desc), 0, 0, {}, false, {}, {}};
  o.set = [member, check](node_config& c, const std::string& v) -> std::optional<std::string> {
    if (check)
      if (auto err = check(c, v))
        return err;
    c.*member = v;
    return std::nullopt;
  };
  o.get = [member](const node_config& c) { return c.*member; };
  return o;
}

option bool_opt(std::string name, std::string desc, bool node_config::*member) {
  option o{std::move(name), kind::boolean, std::move(desc), 0, 0, {}, false, {}, {}};
  o.set = [member](node_config& c, const std::string& v) -> std::optional<std::string> {
    if (v == "true" || v == "1")
      c.*member = true;
    else if (v == "false" || v == "0")
      c.*member = false;
    else
      return "'" + v + "' is not true or false";
    return std::nullopt;
  };
  o.get = [member](const node_config& c) { return std::string{c.*member ? "true" : "false"}; };
  return o;
}

option choice_opt(std::string name, std::string desc, std::vector<std::string> choices,
                  std::string node_config::*member) {
  option o{std::move(name), kind::choice, std::move(desc), 0, 0, choices, false, {}, {}};
  o.set = [member, choices](node_config& c, const std::string& v) -> std::optional<std::string> {
    for (const auto& ch : choices)
      if (ch == v) {
        c.*member = v;
        return std::nullopt;
      }
    std::string list;
    for (const auto& ch : choices)
      list += (list.empty() ? "" : "|") + ch;
    return "'" + v + "' is not one of " + list;
  };
  o.get = [member](const node_config& c) { return c.*member; };
  return o;
}

/// A comma-separated list, parsed once into `member`; `check` names a bad item.
option list_opt(std::string name, std::string desc, std::vector<std::string> node_config::*member,
                std::function<std::optional<std::string>(const std::string&)> check) {
  option o{std::move(name), kind::string, std::move(desc), 0, 0, {}, false, {}, {}};
  o.set = [member, check](node_config& c, const std::string& v) -> std::optional<std::string> {
    std::vector<std::string> items;
    for (std::size_t i = 0; !v.empty();) {
      auto j = v.find(',', i);
      auto item = v.substr(i, j == std::string::npos ? std::string::npos : j - i);
      if (auto err = check(item))
        return err;
      items.push_back(std::move(item));
      if (j == std::string::npos)
        break;
      i = j + 1;
    }
    c.*member = std::move(items);
    return std::nullopt;
  };
  o.get = [member](const node_config& c) {
    std::string out;
    for (const auto& item : c.*member)
      out += (out.empty() ? "" : ",") + item;
    return out;
  };
  return o;
}

const std::vector<option>& options() {
  static const std::vector<option> table = [] {
    std::vector<option> t;
    t.push_back(string_opt("listen", "address:port of the HTTP API (port 0 picks a free port)", &node_config::listen,
                           [](node_config& c, const std::string& v) -> std::optional<std::string> {
                             auto colon = v.rfind(':');
                             if (colon == std::string::npos || colon == 0)
                               return "'" + v + "' is not host:port";
                             auto port = parse_int(v.substr(colon + 1));
                             if (!port || *port < 0 || *port > 65535)
                               return "'" + v + "' has no valid port (0-65535)";
                             c.listen_host = v.substr(0, colon);
                             if (c.listen_host.size() > 2 && c.listen_host.front() == '[')
                               c.listen_host = c.listen_host.substr(1, c.listen_host.size() - 2);
                             c.listen_port = static_cast<std::uint16_t>(*port);
                             return std::nullopt;
                           }));
    t.push_back(string_opt("data-dir", "directory for the embedded store and node files", &node_config::data_dir,
                           [](node_config&, const std::string& v) -> std::optional<std::string> {
                             if (v.empty())
                               return "must not be empty";
                             return std::nullopt;
                           }));
    auto store = string_opt(
      "store", "sqlite: (file in data-dir), sqlite:/path/file.db, or postgresql://user[:password]@host:port/db",
      &node_config::store, [](node_config&, const std::string& v) -> std::optional<std::string> {
        if (v.starts_with("sqlite:") || v.starts_with("postgresql://") || v.starts_with("postgres://"))
          return std::nullopt;
        return "'" + mask_dsn(v) + "' is neither sqlite:[path] nor postgresql://...";
      });
    store.secret = true; // may hold a password: dumped masked
    store.get = [](const node_config& c) { return c.store_for_display(); };
    t.push_back(std::move(store));
    t.push_back(choice_opt("log-format", "text (for terminals) or json (one JSON object per line)", {"text", "json"},
                           &node_config::log_format));
    t.push_back(choice_opt("log-level", "least severe level that is logged",
                           {"trace", "debug", "info", "warn", "error"}, &node_config::log_level));
    t.push_back(duration_opt("entity.idle-timeout", "idle time after which an entity actor is passivated",
                             std::chrono::milliseconds(10), std::chrono::hours(24), &node_config::idle_timeout));
    t.push_back(duration_opt("request-timeout", "longest time a request may wait for its entity or the store",
                             std::chrono::milliseconds(100), std::chrono::minutes(5), &node_config::request_timeout));
    t.push_back(duration_opt("shutdown-timeout", "on SIGTERM, longest wait for in-flight requests",
                             std::chrono::milliseconds(100), std::chrono::minutes(5), &node_config::shutdown_timeout));
    t.push_back(int_opt("http.body-limit", "largest request body in bytes (413 beyond)", 1024, 1024LL * 1024 * 1024,
                        &node_config::http_body_limit, kind::size));
    t.push_back(int_opt("http.header-limit", "largest request line plus headers in bytes (431 beyond)", 1024,
                        1024 * 1024, &node_config::http_header_limit, kind::size));
    t.push_back(int_opt("http.request-line-limit",
                        "longest request line (method, target, version) in bytes (414 beyond)", 64, 1024 * 1024,
                        &node_config::http_request_line_limit, kind::size));
    t.push_back(int_opt("http.header-count-limit", "most header fields in one request (431 beyond)", 1, 10'000,
                        &node_config::http_header_count_limit));
    t.push_back(duration_opt("http.read-timeout", "time allowed to receive one request", std::chrono::milliseconds(100),
                             std::chrono::minutes(10), &node_config::http_read_timeout));
    t.push_back(duration_opt("http.idle-timeout", "keep-alive connections idle longer than this are closed",
                             std::chrono::milliseconds(100), std::chrono::hours(1), &node_config::http_idle_timeout));
    t.push_back(int_opt("http.threads", "threads that run the HTTP server", 1, 256, &node_config::http_threads));
    t.push_back(int_opt("http.max-connections", "open connections beyond this are refused", 1, 1'000'000,
                        &node_config::http_max_connections));
    t.push_back(
      int_opt("http.max-in-flight",
              "requests in progress (waiting for actors or the store) beyond which new ones get 503 overloaded", 1,
              1'000'000, &node_config::http_max_in_flight));
    t.push_back(duration_opt("http.idempotency-ttl",
                             "how long the answer to a POST with an Idempotency-Key is kept for replays",
                             std::chrono::minutes(1), std::chrono::hours(24 * 30), &node_config::http_idempotency_ttl));
    t.push_back(string_opt("tls-cert",
                           "PEM certificate chain; with tls-key the API is served over HTTPS only (TLS 1.2+, HSTS)",
                           &node_config::tls_cert));
    t.push_back(
      string_opt("tls-key", "PEM private key of tls-cert (keep it readable by the node only)", &node_config::tls_key));
    t.push_back(int_opt("storage.read-connections", "database connections for loads and lists", 1, 64,
                        &node_config::store_read_connections));
    t.push_back(int_opt("storage.max-batch",
                        "most entity commits grouped into one transaction, and loads into one query", 1, 10'000,
                        &node_config::store_max_batch));
    t.push_back(int_opt("scheduler.threads", "actor scheduler threads (0: one per core)", 0, 256,
                        &node_config::scheduler_threads));
    t.push_back(
      int_opt("tenant.trial-days", "length of a new tenant's trial in days", 0, 3650, &node_config::trial_days));
    t.push_back(duration_opt("timers.poll-interval", "how often due durable timers (trial expiry, ...) are looked for",
                             std::chrono::milliseconds(10), std::chrono::minutes(10),
                             &node_config::timer_poll_interval));
    auto plan =
      option{"tenant.default-plan", kind::string, "plan of a tenant created without one", 0, 0, {}, false, {}, {}};
    plan.set = [](node_config& c, const std::string& v) -> std::optional<std::string> {
      c.rules.default_plan = v; // checked against the plans once all sources are read
      return std::nullopt;
    };
    plan.get = [](const node_config& c) { return c.rules.default_plan; };
    t.push_back(std::move(plan));
    t.push_back(list_opt("http.cors-origins",
                         "origins allowed to call the API from a browser (CORS), comma-separated, e.g. "
                         "https://app.example.com; * allows any; empty: no CORS headers",
                         &node_config::http_cors_origins, [](const std::string& o) -> std::optional<std::string> {
                           bool scheme = o.starts_with("http://") || o.starts_with("https://");
                           auto rest = scheme ? o.substr(o.find("://") + 3) : std::string{};
                           if (o != "*" && (!scheme || rest.empty() || rest.find('/') != std::string::npos))
                             return "'" + o + "' is not an origin (scheme://host[:port], no path) or *";
                           return std::nullopt;
                         }));
    auto stripe = string_opt("stripe-webhook-secret",
                             "signing secret (whsec_...) of the Stripe webhook endpoint; empty turns the route off",
                             &node_config::stripe_webhook_secret);
    stripe.secret = true;
    stripe.get = [](const node_config& c) {
      return c.stripe_webhook_secret.empty() ? std::string{} : std::string{"***"};
    };
    t.push_back(std::move(stripe));
    t.push_back(duration_opt("billing.payment-grace",
                             "after a failed payment, time until the tenant is suspended unless it pays",
                             std::chrono::milliseconds(0), std::chrono::hours(24 * 90), &node_config::payment_grace));
    t.push_back(int_opt("webhooks.max-attempts", "attempts of one webhook delivery before it is dead-lettered", 1, 50,
                        &node_config::webhook_max_attempts));
    t.push_back(duration_opt("webhooks.retry-base",
                             "wait before the first retry of a failed delivery; it doubles (with jitter) up to 1 h",
                             std::chrono::milliseconds(10), std::chrono::hours(1), &node_config::webhook_retry_base));
    t.push_back(string_opt(
      "webhooks.ca-file", "PEM file of extra CAs trusted for https webhook endpoints (the system's are always trusted)",
      &node_config::webhook_ca_file));
    auto sk = string_opt(
      "secrets-key",
      "key (64 hex digits) that seals secrets at rest (webhook signing secrets); empty: "
      "secrets-key-file. Every node of a cluster needs the same key",
      &node_config::secrets_key, [](node_config&, const std::string& v) -> std::optional<std::string> {
        if (!v.empty() && (v.size() != 64 || v.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos))
          return std::string{"must be 64 hex digits (e.g. openssl rand -hex 32)"};
        return std::nullopt;
      });
    sk.secret = true;
    sk.get = [](const node_config& c) { return c.secrets_key.empty() ? std::string{} : std::string{"***"}; };
    t.push_back(std::move(sk));
    t.push_back(string_opt("secrets-key-file",
                           "file holding the secrets key when secrets-key is empty; made (random, mode 0600) if "
                           "missing; empty: <data-dir>/secrets.key",
                           &node_config::secrets_key_file));
    t.push_back(bool_opt("webhooks.allow-private-targets",
                         "let webhook endpoints be loopback, private (RFC 1918, fc00::/7), link-local or other "
                         "non-public addresses (refused otherwise, at registration and at every delivery)",
                         &node_config::webhook_allow_private_targets));
    t.push_back(duration_opt("webhooks.timeout", "time an endpoint has to answer one delivery",
                             std::chrono::milliseconds(100), std::chrono::minutes(5), &node_config::webhook_timeout));
    t.push_back(string_opt("kafka-brokers", "Kafka bootstrap servers (host:port,...); empty turns the event relay off",
                           &node_config::kafka_brokers));
    t.push_back(string_opt(
      "kafka.events-topic", "topic the outbox relay publishes domain events to", &node_config::kafka_events_topic,
      [](node_config&, const std::string& v) -> std::optional<std::string> {
        if (v.empty() || v.size() > 249 ||
            v.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
              std::string::npos)
          return "'" + v + "' is not a Kafka topic name ([a-zA-Z0-9._-], 1 to 249 characters)";
        return std::nullopt;
      }));
    auto topic_check = [](node_config&, const std::string& v) -> std::optional<std::string> {
      if (v.empty() || v.size() > 249 ||
          v.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != std::string::npos)
        return "'" + v + "' is not a Kafka topic name ([a-zA-Z0-9._-], 1 to 249 characters)";
      return std::nullopt;
    };
    t.push_back(string_opt("kafka.commands-topic", "topic of commands from other systems (colony.v1.Command)",
                           &node_config::kafka_commands_topic, topic_check));
    t.push_back(string_opt("kafka.results-topic", "topic the result of each command goes to, keyed by command id",
                           &node_config::kafka_results_topic, topic_check));
    t.push_back(string_opt("kafka.dlq-topic", "dead-letter topic for commands that cannot be parsed or keep failing",
                           &node_config::kafka_dlq_topic, topic_check));
    t.push_back(string_opt("kafka.group-id", "consumer group of the command consumer", &node_config::kafka_group_id,
                           [](node_config&, const std::string& v) -> std::optional<std::string> {
                             if (v.empty())
                               return "must not be empty";
                             return std::nullopt;
                           }));
    t.push_back(int_opt("kafka.command-attempts",
                        "tries of a command that fails transiently before it is dead-lettered", 1, 100,
                        &node_config::kafka_command_attempts));
    t.push_back(choice_opt("kafka.value-format", "encoding of event values: protobuf (colony.v1.Event) or json",
                           {"protobuf", "json"}, &node_config::kafka_value_format));
    auto hs =
      string_opt("auth-jwt-hs256-secret",
                 "shared secret that signs HS256 tokens (at least 32 bytes); empty: HS256 tokens are refused",
                 &node_config::auth_hs256_secret, [](node_config&, const std::string& v) -> std::optional<std::string> {
                   if (!v.empty() && v.size() < 32)
                     return "the secret is shorter than 32 bytes (HS256 needs at least 256 bits; value not shown)";
                   return std::nullopt;
                 });
    hs.secret = true;
    hs.get = [](const node_config& c) { return c.auth_hs256_secret.empty() ? std::string{} : std::string{"***"}; };
    t.push_back(std::move(hs));
    t.push_back(string_opt("auth-jwks",
                           "JWKS of the token issuer for RS256/ES256: a file path or an http(s) URL "
                           "(e.g. Keycloak's .../protocol/openid-connect/certs); empty: RS256/ES256 refused",
                           &node_config::auth_jwks));
    t.push_back(string_opt("auth-issuer", "required iss of tokens (empty: not checked)", &node_config::auth_issuer));
    t.push_back(
      string_opt("auth-audience", "required aud of tokens (empty: not checked)", &node_config::auth_audience));
    t.push_back(duration_opt("auth.leeway", "clock skew allowed when checking exp and nbf",
                             std::chrono::milliseconds(0), std::chrono::minutes(10), &node_config::auth_leeway));
    t.push_back(duration_opt("auth.jwks-refresh",
                             "how often a JWKS URL is fetched again (an unknown kid also triggers it)",
                             std::chrono::seconds(10), std::chrono::hours(24), &node_config::auth_jwks_refresh));
    t.push_back(string_opt("auth.jwks-ca-file", "PEM file of extra CAs trusted for an https JWKS URL",
                           &node_config::auth_jwks_ca_file));
    auto claim_check = [](node_config&, const std::string& v) -> std::optional<std::string> {
      if (v.empty() || v.front() == '.' || v.back() == '.' || v.find("..") != std::string::npos)
        return "'" + v + "' is not a claim name or dotted path";
      return std::nullopt;
    };
    t.push_back(string_opt("auth.tenant-claim", "token claim that names the caller's tenant (its id)",
                           &node_config::auth_tenant_claim, claim_check));
    t.push_back(string_opt("auth.roles-claim", "dotted path to the token's roles array (Keycloak: realm_access.roles)",
                           &node_config::auth_roles_claim, claim_check));
    t.push_back(string_opt("auth.user-claim",
                           "token claim that holds the caller's Colony user id (for members' own profile)",
                           &node_config::auth_user_claim, claim_check));
    t.push_back(
      list_opt("auth.open-routes",
               "operational paths answered without credentials, comma-separated, from /livez, /readyz, "
               "/metrics, /openapi.json; empty: all need a platform admin (the Stripe webhook is always open)",
               &node_config::auth_open_routes, [](const std::string& p) -> std::optional<std::string> {
                 if (p != "/livez" && p != "/readyz" && p != "/metrics" && p != "/openapi.json")
                   return "'" + p + "' is not one of /livez, /readyz, /metrics, /openapi.json";
                 return std::nullopt;
               }));
    t.push_back(
      duration_opt("auth.api-key-cache-ttl",
                   "how long a node trusts an API key it looked up (revocations through this node apply at once)",
                   std::chrono::milliseconds(0), std::chrono::minutes(10), &node_config::auth_api_key_cache_ttl));
    t.push_back(int_opt("ratelimit.credential-percent",
                        "one credential's token bucket, as a share of its tenant's plan rate and burst (the tenant's "
                        "own bucket is the plan's requests-per-second and burst)",
                        1, 100, &node_config::ratelimit_credential_percent));
    t.push_back(duration_opt(
      "quota.flush-interval", "how often the API calls counted at the edge are added to the store (apiCallsPerMonth)",
      std::chrono::milliseconds(50), std::chrono::minutes(10), &node_config::quota_flush_interval));
    t.push_back(bool_opt("billing.allow-tenant-plan-change",
                         "with stripe-webhook-secret set, tenant owners may still change their own plan "
                         "(otherwise only billing events and platform credentials do)",
                         &node_config::billing_allow_tenant_plan_change));
    auto clock = option{"debug.clock-start",
                        kind::string,
                        "tests only: the node's clock starts at this UTC time (YYYY-MM-DDTHH:MM:SSZ) and runs on "
                        "from there; empty: the system clock",
                        0,
                        0,
                        {},
                        false,
                        {},
                        {}};
    clock.set = [](node_config& c, const std::string& v) -> std::optional<std::string> {
      if (v.empty()) {
        c.clock_start_us = 0;
        c.clock_start.clear();
        return std::nullopt;
      }
      std::tm tm{};
      std::istringstream in{v};
      in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%SZ");
      if (in.fail() || in.peek() != std::char_traits<char>::eof())
        return "'" + v + "' is not a UTC time such as 2026-12-31T23:59:50Z";
      c.clock_start_us = static_cast<std::int64_t>(timegm(&tm)) * 1'000'000;
      c.clock_start = v;
      return std::nullopt;
    };
    clock.get = [](const node_config& c) { return c.clock_start; };
    t.push_back(std::move(clock));
    t.push_back(bool_opt("debug.fault-injection", "honour X-Colony-Fault: crash (tests only; never in production)",
                         &node_config::fault_injection));
    return t;
  }();
  return table;
}

} // namespace colony::runtime::detail
