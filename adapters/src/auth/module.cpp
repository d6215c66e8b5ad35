// The auth module (auth-*, auth.*): the token verifier the HTTP module
// checks bearer tokens with, or, with no credential configured at all, the
// bootstrap platform admin API key.
#include <caf/all.hpp>
#include <filesystem>
#include <thread>

#include "colony/adapters/auth.hpp"
#include "colony/protocol/time.hpp"

namespace colony::adapters {
namespace {

using runtime::node_config;
namespace opt = runtime::opt;

std::optional<std::string> claim_check(node_config&, const std::string& v) {
  if (v.empty() || v.front() == '.' || v.back() == '.' || v.find("..") != std::string::npos)
    return "'" + v + "' is not a claim name or dotted path";
  return std::nullopt;
}

/// First start without any credential configured: mint a platform admin API
/// key and leave it in <data-dir>/admin.key (0600), so that the operator can
/// make the first tenant. Logs the path, never the key.
void bootstrap_admin_key(caf::actor_system& sys, const actors::store_port& store, const node_config& cfg) {
  caf::scoped_actor self{sys};
  actors::api_key_op count;
  count.what = actors::api_key_op::kind::count_platform;
  count.now_us = protocol::now_us();
  std::optional<actors::api_key_result> found;
  for (int attempt = 0; attempt < 50 && !found; ++attempt) {
    self->request(store, std::chrono::seconds(5), actors::api_key_atom::value, count)
      .receive(
        [&](actors::api_key_result& r) {
          if (r.status == actors::store_status::ok)
            found = r;
        },
        [](caf::error&) {});
    if (!found)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!found) {
    log::warn("could not check for a platform admin API key (the store does not answer); none was created");
    return;
  }
  if (found->count > 0)
    return;
  auto path = (std::filesystem::path{cfg.data_dir} / "admin.key").string();
  auto minted = mint_api_key({}, {"platform_admin"}, "bootstrap admin", "bootstrap", protocol::now_us(), 0);
  actors::api_key_op create;
  create.what = actors::api_key_op::kind::create;
  create.key = minted.row;
  bool stored = false;
  self->request(store, std::chrono::seconds(10), actors::api_key_atom::value, create)
    .receive([&](actors::api_key_result& r) { stored = r.status == actors::store_status::ok; }, [](caf::error&) {});
  if (!stored) {
    log::error("could not store the bootstrap admin API key");
    return;
  }
  write_secret_file(path, minted.key);
  log::warn("no credentials were configured: created a platform admin API key; send it as "
            "'Authorization: Bearer <key>' and keep the file secret",
            {{"path", path}, {"key_id", minted.row.id}});
}

class auth_impl final : public runtime::module {
public:
  std::string_view name() const override { return "auth"; }
  std::string_view title() const override { return "the token verifier"; }

  void options(runtime::option_registry& r) override {
    const std::string m = "auth";
    r.add(m,
          opt::secret("auth-jwt-hs256-secret",
                      "shared secret that signs HS256 tokens (at least 32 bytes); empty: HS256 tokens are refused",
                      &node_config::auth_hs256_secret,
                      [](node_config&, const std::string& v) -> std::optional<std::string> {
                        if (!v.empty() && v.size() < 32)
                          return "the secret is shorter than 32 bytes (HS256 needs at least 256 bits; value not "
                                 "shown)";
                        return std::nullopt;
                      }));
    r.add(m,
          opt::string("auth-jwks",
                      "JWKS of the token issuer for RS256/ES256: a file path or an http(s) URL "
                      "(e.g. Keycloak's .../protocol/openid-connect/certs); empty: RS256/ES256 refused",
                      &node_config::auth_jwks));
    r.add(m, opt::string("auth-issuer", "required iss of tokens (empty: not checked)", &node_config::auth_issuer));
    r.add(m, opt::string("auth-audience", "required aud of tokens (empty: not checked)", &node_config::auth_audience));
    r.add(m,
          opt::duration("auth.leeway", "clock skew allowed when checking exp and nbf", std::chrono::milliseconds(0),
                        std::chrono::minutes(10), &node_config::auth_leeway));
    r.add(m,
          opt::duration("auth.jwks-refresh", "how often a JWKS URL is fetched again (an unknown kid also triggers it)",
                        std::chrono::seconds(10), std::chrono::hours(24), &node_config::auth_jwks_refresh));
    r.add(m,
          opt::string("auth.jwks-ca-file", "PEM file of extra CAs trusted for an https JWKS URL",
                      &node_config::auth_jwks_ca_file));
    r.add(m,
          opt::string("auth.tenant-claim", "token claim that names the caller's tenant (its id)",
                      &node_config::auth_tenant_claim, claim_check));
    r.add(m,
          opt::string("auth.roles-claim", "dotted path to the token's roles array (Keycloak: realm_access.roles)",
                      &node_config::auth_roles_claim, claim_check));
    r.add(m,
          opt::string("auth.user-claim",
                      "token claim that holds the caller's Colony user id (for members' own profile)",
                      &node_config::auth_user_claim, claim_check));
    r.add(m,
          opt::list("auth.open-routes",
                    "operational paths answered without credentials, comma-separated, from /livez, /readyz, "
                    "/metrics, /openapi.json; empty: all need a platform admin (the Stripe webhook is always open)",
                    &node_config::auth_open_routes, [](const std::string& p) -> std::optional<std::string> {
                      if (p != "/livez" && p != "/readyz" && p != "/metrics" && p != "/openapi.json")
                        return "'" + p + "' is not one of /livez, /readyz, /metrics, /openapi.json";
                      return std::nullopt;
                    }));
    r.add(m,
          opt::duration("auth.api-key-cache-ttl",
                        "how long a node trusts an API key it looked up (a revocation applies at once, on a "
                        "cluster on every connected member; this bounds it for the others)",
                        std::chrono::milliseconds(0), std::chrono::minutes(10), &node_config::auth_api_key_cache_ttl));
  }

  void start(runtime::node_context& node) override {
    const auto& cfg = node.cfg;
    jwt_options o;
    o.hs256_secret = cfg.auth_hs256_secret;
    o.jwks = cfg.auth_jwks;
    o.issuer = cfg.auth_issuer;
    o.audience = cfg.auth_audience;
    o.leeway = std::chrono::duration_cast<std::chrono::seconds>(cfg.auth_leeway);
    o.jwks_refresh = std::chrono::duration_cast<std::chrono::seconds>(cfg.auth_jwks_refresh);
    o.ca_file = cfg.auth_jwks_ca_file;
    o.tenant_claim = cfg.auth_tenant_claim;
    o.roles_claim = cfg.auth_roles_claim;
    o.user_claim = cfg.auth_user_claim;
    if (!o.enabled()) {
      try {
        bootstrap_admin_key(node.sys, node.store, cfg);
      } catch (const std::exception& e) {
        throw runtime::start_error(std::string{"cannot write the bootstrap admin API key: "} + e.what(), 1);
      }
      return;
    }
    std::shared_ptr<const jwt_verifier> jwt;
    try {
      jwt = std::make_shared<const jwt_verifier>(o);
    } catch (const std::exception& e) {
      throw runtime::start_error(std::string{"invalid value for "} + e.what(), 2);
    }
    node.provide(jwt);
    log::info("bearer tokens accepted",
              {{"hs256", o.hs256_secret.empty() ? "off" : "on"},
               {"jwks", o.jwks.empty() ? std::string{"off"} : o.jwks},
               {"jwks_keys", static_cast<int>(jwt->key_count())},
               {"issuer", o.issuer.empty() ? std::string{"(not checked)"} : o.issuer},
               {"audience", o.audience.empty() ? std::string{"(not checked)"} : o.audience}});
  }
};

} // namespace

std::unique_ptr<runtime::module> auth_module() { return std::make_unique<auth_impl>(); }

} // namespace colony::adapters
