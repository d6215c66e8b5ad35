// JWT verification with OpenSSL (EVP) and nlohmann::json. See auth.hpp.
#include "colony/adapters/auth.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "colony/protocol/base64url.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/log.hpp"
#include "jwks_fetch.hpp"

namespace colony::adapters {
namespace {

using actors::access::principal;
using protocol::base64url_decode;

struct pkey_deleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using pkey_ptr = std::shared_ptr<EVP_PKEY>;

enum class key_kind { rsa, ec };

struct jwk {
  std::string kid;
  std::string alg; // empty: any alg of its kind
  key_kind kind;
  pkey_ptr key;
};

struct keyset {
  std::vector<jwk> keys;
};

struct param_deleter {
  void operator()(OSSL_PARAM_BLD* b) const { OSSL_PARAM_BLD_free(b); }
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
  void operator()(BIGNUM* n) const { BN_free(n); }
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};
template <class T>
using owned = std::unique_ptr<T, param_deleter>;

std::string b64_field(const nlohmann::json& k, const char* name) {
  if (!k.contains(name) || !k[name].is_string())
    throw std::runtime_error(std::string{"a key has no '"} + name + "'");
  auto v = base64url_decode(k[name].get<std::string>());
  if (!v || v->empty())
    throw std::runtime_error(std::string{"a key's '"} + name + "' is not base64url");
  return *v;
}

pkey_ptr from_params(const char* type, OSSL_PARAM_BLD* bld) {
  owned<OSSL_PARAM> params{OSSL_PARAM_BLD_to_param(bld)};
  owned<EVP_PKEY_CTX> ctx{EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr)};
  EVP_PKEY* out = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &out, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
    throw std::runtime_error(std::string{"OpenSSL rejected an "} + type + " key");
  return pkey_ptr{out, pkey_deleter{}};
}

pkey_ptr rsa_key(const nlohmann::json& k) {
  auto n = b64_field(k, "n"), e = b64_field(k, "e");
  owned<BIGNUM> bn_n{BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()), static_cast<int>(n.size()), nullptr)};
  owned<BIGNUM> bn_e{BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()), static_cast<int>(e.size()), nullptr)};
  owned<OSSL_PARAM_BLD> bld{OSSL_PARAM_BLD_new()};
  if (!bn_n || !bn_e || !bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1)
    throw std::runtime_error("cannot build an RSA key");
  auto key = from_params("RSA", bld.get());
  if (EVP_PKEY_get_bits(key.get()) < 2048)
    throw std::runtime_error("an RSA key is shorter than 2048 bits");
  return key;
}

pkey_ptr ec_key(const nlohmann::json& k) {
  if (!k.contains("crv") || k["crv"] != "P-256")
    throw std::runtime_error("an EC key is not on curve P-256 (the only one ES256 uses)");
  auto x = b64_field(k, "x"), y = b64_field(k, "y");
  if (x.size() != 32 || y.size() != 32)
    throw std::runtime_error("an EC key's x or y is not 32 bytes");
  std::string pub = "\x04" + x + y;
  owned<OSSL_PARAM_BLD> bld{OSSL_PARAM_BLD_new()};
  char group[] = "prime256v1";
  if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, pub.data(), pub.size()) != 1)
    throw std::runtime_error("cannot build an EC key");
  return from_params("EC", bld.get());
}

/// Parses a JWKS document. Keys that are not for signatures, or of a type
/// Colony does not verify with, are skipped; a broken key is an error.
std::shared_ptr<const keyset> parse_jwks(const std::string& text) {
  auto doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("keys") || !doc["keys"].is_array())
    throw std::runtime_error("not a JWKS document (a JSON object with a \"keys\" array)");
  auto out = std::make_shared<keyset>();
  for (const auto& k : doc["keys"]) {
    if (!k.is_object() || !k.contains("kty") || !k["kty"].is_string())
      throw std::runtime_error("a key has no kty");
    if (k.contains("use") && k["use"] != "sig")
      continue;
    auto kty = k["kty"].get<std::string>();
    std::string alg = k.contains("alg") && k["alg"].is_string() ? k["alg"].get<std::string>() : "";
    std::string kid = k.contains("kid") && k["kid"].is_string() ? k["kid"].get<std::string>() : "";
    if (kty == "RSA" && (alg.empty() || alg == "RS256"))
      out->keys.push_back(jwk{kid, alg, key_kind::rsa, rsa_key(k)});
    else if (kty == "EC" && (alg.empty() || alg == "ES256"))
      out->keys.push_back(jwk{kid, alg, key_kind::ec, ec_key(k)});
  }
  return out;
}

bool is_url(const std::string& s) { return s.starts_with("http://") || s.starts_with("https://"); }

std::string read_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    throw std::runtime_error("cannot read '" + path + "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool verify_digest(EVP_PKEY* key, std::string_view data, const unsigned char* sig, std::size_t sig_len) {
  owned<EVP_MD_CTX> ctx{EVP_MD_CTX_new()};
  return ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) == 1 &&
    EVP_DigestVerify(ctx.get(), sig, sig_len, reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
}

/// JWS ES256 signatures are r||s (64 bytes); OpenSSL verifies DER.
std::optional<std::string> ecdsa_der(const std::string& raw) {
  if (raw.size() != 64)
    return std::nullopt;
  auto* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr);
  auto* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
  owned<ECDSA_SIG> sig{ECDSA_SIG_new()};
  if (!r || !s || !sig || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return std::nullopt;
  }
  int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0)
    return std::nullopt;
  std::string der(static_cast<std::size_t>(len), '\0');
  auto* p = reinterpret_cast<unsigned char*>(der.data());
  i2d_ECDSA_SIG(sig.get(), &p);
  return der;
}

auth_error invalid(std::string why) { return auth_error{"invalid_token", std::move(why)}; }

} // namespace

struct jwt_verifier::impl {
  jwt_options opts;
  mutable std::mutex mu;
  mutable std::shared_ptr<const keyset> keys = std::make_shared<keyset>();
  mutable std::filesystem::file_time_type file_mtime{};
  mutable std::chrono::steady_clock::time_point last_file_check{};
  // Background refresh of a JWKS URL.
  std::thread refresher;
  mutable std::condition_variable wake;
  mutable bool kicked = false;
  bool stopping = false;

  std::shared_ptr<const keyset> current() const {
    std::lock_guard lock{mu};
    return keys;
  }

  void install(std::shared_ptr<const keyset> ks) const {
    std::lock_guard lock{mu};
    keys = std::move(ks);
  }

  void load_file() const {
    auto mtime = std::filesystem::last_write_time(opts.jwks);
    auto ks = parse_jwks(read_file(opts.jwks));
    std::lock_guard lock{mu};
    keys = std::move(ks);
    file_mtime = mtime;
  }

  /// A token named a kid we do not know: the file may have been rotated.
  /// Re-reads a changed file at once (at most every 100 ms); kicks the URL
  /// refresher.
  void unknown_kid() const {
    if (is_url(opts.jwks)) {
      std::lock_guard lock{mu};
      kicked = true;
      wake.notify_one();
      return;
    }
    {
      std::lock_guard lock{mu};
      auto now = std::chrono::steady_clock::now();
      if (now - last_file_check < std::chrono::milliseconds(100))
        return;
      last_file_check = now;
    }
    try {
      std::error_code ec;
      auto mtime = std::filesystem::last_write_time(opts.jwks, ec);
      {
        std::lock_guard lock{mu};
        if (ec || mtime == file_mtime)
          return;
      }
      load_file();
      log::info("JWKS re-read", {{"source", opts.jwks}, {"keys", static_cast<int>(current()->keys.size())}});
    } catch (const std::exception& e) {
      log::warn("JWKS could not be re-read; the previous keys stay", {{"source", opts.jwks}, {"error", e.what()}});
    }
  }

  void refresh_loop() {
    using clock = std::chrono::steady_clock;
    auto last_fetch = clock::now();
    std::unique_lock lock{mu};
    for (;;) {
      // Every jwks_refresh; sooner when a token named an unknown kid, but at
      // most every 10 s, so that forged kids cannot make us hammer the issuer.
      auto due = last_fetch + std::chrono::duration_cast<clock::duration>(opts.jwks_refresh);
      auto kick_due = last_fetch + std::chrono::seconds(10);
      for (;;) {
        auto now = clock::now();
        if (stopping || now >= due || (kicked && now >= kick_due))
          break;
        wake.wait_until(lock, kicked ? std::min(due, kick_due) : due);
      }
      if (stopping)
        return;
      kicked = false;
      lock.unlock();
      try {
        auto ks = parse_jwks(auth::fetch_jwks(opts.jwks, opts.ca_file, std::chrono::seconds(10)));
        install(ks);
        log::info("JWKS refreshed", {{"source", opts.jwks}, {"keys", static_cast<int>(ks->keys.size())}});
      } catch (const std::exception& e) {
        log::warn("JWKS refresh failed; the previous keys stay", {{"source", opts.jwks}, {"error", e.what()}});
      }
      last_fetch = clock::now();
      lock.lock();
    }
  }

  auth_result verify(std::string_view token, std::int64_t now_s) const {
    if (token.size() > 8192)
      return invalid("the token is longer than 8192 bytes");
    auto d1 = token.find('.');
    auto d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
    if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
      return invalid("the token is not a JWS compact serialization (header.payload.signature)");
    auto header_raw = base64url_decode(token.substr(0, d1));
    auto payload_raw = base64url_decode(token.substr(d1 + 1, d2 - d1 - 1));
    auto sig = base64url_decode(token.substr(d2 + 1));
    if (!header_raw || !payload_raw || !sig)
      return invalid("the token is not base64url");
    auto header = nlohmann::json::parse(*header_raw, nullptr, false);
    if (header.is_discarded() || !header.is_object() || !header.contains("alg") || !header["alg"].is_string())
      return invalid("the token header is not a JSON object with an alg");
    auto alg = header["alg"].get<std::string>();
    if (header.contains("crit"))
      return invalid("the token header has crit extensions, which are not supported");
    std::string kid = header.contains("kid") && header["kid"].is_string() ? header["kid"].get<std::string>() : "";
    auto signing_input = token.substr(0, d2);

    if (alg == "HS256") {
      if (opts.hs256_secret.empty())
        return invalid("alg HS256 is not accepted here");
      unsigned char mac[EVP_MAX_MD_SIZE];
      unsigned int mac_len = 0;
      HMAC(EVP_sha256(), opts.hs256_secret.data(), static_cast<int>(opts.hs256_secret.size()),
           reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac, &mac_len);
      if (sig->size() != mac_len || CRYPTO_memcmp(sig->data(), mac, mac_len) != 0)
        return invalid("the signature does not verify");
    } else if (alg == "RS256" || alg == "ES256") {
      if (opts.jwks.empty())
        return invalid("alg " + alg + " is not accepted here");
      auto want = alg == "RS256" ? key_kind::rsa : key_kind::ec;
      auto pick = [&](const keyset& ks) -> const jwk* {
        const jwk* found = nullptr;
        int candidates = 0;
        for (const auto& k : ks.keys) {
          if (k.kind != want || (!k.alg.empty() && k.alg != alg))
            continue;
          ++candidates;
          if (kid.empty() || k.kid == kid)
            found = &k;
        }
        return kid.empty() && candidates != 1 ? nullptr : found;
      };
      auto ks = current();
      const jwk* key = pick(*ks);
      if (key == nullptr && !kid.empty()) {
        unknown_kid();
        ks = current();
        key = pick(*ks);
      }
      if (key == nullptr)
        return invalid(kid.empty() ? "the token has no kid and the key set has no single " + alg + " key"
                                   : "no " + alg + " key with kid '" + kid.substr(0, 64) + "'");
      std::string der;
      if (want == key_kind::ec) {
        auto d = ecdsa_der(*sig);
        if (!d)
          return invalid("the signature does not verify");
        der = std::move(*d);
      } else {
        der = *sig;
      }
      if (!verify_digest(key->key.get(), signing_input, reinterpret_cast<const unsigned char*>(der.data()), der.size()))
        return invalid("the signature does not verify");
    } else {
      return invalid("alg '" + alg.substr(0, 16) +
                     "' is not accepted (only HS256, RS256, ES256 as configured; never none)");
    }

    // The signature holds: now the claims.
    auto claims = nlohmann::json::parse(*payload_raw, nullptr, false);
    if (claims.is_discarded() || !claims.is_object())
      return invalid("the token payload is not a JSON object");
    auto leeway = opts.leeway.count();
    if (!claims.contains("exp") || !claims["exp"].is_number())
      return invalid("the token has no exp");
    if (now_s > claims["exp"].get<double>() + static_cast<double>(leeway))
      return invalid("the token expired");
    if (claims.contains("nbf")) {
      if (!claims["nbf"].is_number())
        return invalid("the token's nbf is not a number");
      if (static_cast<double>(now_s + leeway) < claims["nbf"].get<double>())
        return invalid("the token is not valid yet (nbf)");
    }
    std::string iss = claims.contains("iss") && claims["iss"].is_string() ? claims["iss"].get<std::string>() : "";
    if (!opts.issuer.empty() && iss != opts.issuer)
      return invalid("the token was issued by another issuer");
    if (!opts.audience.empty()) {
      bool ok = false;
      if (claims.contains("aud")) {
        const auto& aud = claims["aud"];
        if (aud.is_string())
          ok = aud.get<std::string>() == opts.audience;
        else if (aud.is_array())
          ok = std::any_of(aud.begin(), aud.end(), [&](const nlohmann::json& a) {
            return a.is_string() && a.get<std::string>() == opts.audience;
          });
      }
      if (!ok)
        return invalid("the token is meant for another audience");
    }
    principal who;
    who.kind = "jwt";
    if (claims.contains(opts.user_claim) && claims[opts.user_claim].is_string())
      who.subject = claims[opts.user_claim].get<std::string>();
    std::string sub = claims.contains("sub") && claims["sub"].is_string() ? claims["sub"].get<std::string>() : "";
    who.credential = "jwt:" + iss + "#" + sub;
    if (claims.contains(opts.tenant_claim)) {
      const auto& t = claims[opts.tenant_claim];
      if (!t.is_string() || !protocol::is_uuid(t.get<std::string>()))
        return invalid("the token's " + opts.tenant_claim + " claim is not a tenant id (UUID)");
      who.tenant_id = t.get<std::string>();
      std::transform(who.tenant_id.begin(), who.tenant_id.end(), who.tenant_id.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    }
    // roles_claim is a dotted path (realm_access.roles for Keycloak).
    const nlohmann::json* node = &claims;
    std::string_view path = opts.roles_claim;
    while (node != nullptr && !path.empty()) {
      auto dot = path.find('.');
      std::string part{path.substr(0, dot)};
      node = node->is_object() && node->contains(part) ? &(*node)[part] : nullptr;
      path = dot == std::string_view::npos ? std::string_view{} : path.substr(dot + 1);
    }
    if (node != nullptr) {
      if (node->is_array()) {
        for (const auto& r : *node)
          if (r.is_string())
            who.roles.push_back(r.get<std::string>());
      } else if (node->is_string()) { // a space-separated list, like scope
        std::istringstream words{node->get<std::string>()};
        for (std::string r; words >> r;)
          who.roles.push_back(r);
      }
    }
    return who;
  }
};

jwt_verifier::jwt_verifier(jwt_options opts) : impl_(std::make_unique<impl>()) {
  impl_->opts = std::move(opts);
  const auto& src = impl_->opts.jwks;
  if (src.empty())
    return;
  try {
    if (is_url(src))
      impl_->install(parse_jwks(auth::fetch_jwks(src, impl_->opts.ca_file, std::chrono::seconds(10))));
    else
      impl_->load_file();
  } catch (const std::exception& e) {
    throw std::runtime_error("auth-jwks '" + src + "': " + e.what());
  }
  if (is_url(src))
    impl_->refresher = std::thread{[this] { impl_->refresh_loop(); }};
}

jwt_verifier::~jwt_verifier() {
  if (impl_->refresher.joinable()) {
    {
      std::lock_guard lock{impl_->mu};
      impl_->stopping = true;
    }
    impl_->wake.notify_one();
    impl_->refresher.join();
  }
}

auth_result jwt_verifier::verify(std::string_view token, std::int64_t now_s) const {
  return impl_->verify(token, now_s);
}

std::size_t jwt_verifier::key_count() const { return impl_->current()->keys.size(); }

const jwt_options& jwt_verifier::options() const { return impl_->opts; }

} // namespace colony::adapters
