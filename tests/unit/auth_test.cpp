// JWT verification (HS256, RS256 and ES256 from a JWKS file) and API keys.
// Tokens are signed here with OpenSSL directly, the way an issuer would, and
// the verifier must accept exactly the good ones.
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "colony/adapters/auth.hpp"
#include "colony/protocol/base64url.hpp"

using namespace colony;
using actors::access::principal;
using adapters::auth_error;
using adapters::jwt_options;
using adapters::jwt_verifier;
using protocol::base64url_encode;

namespace {

constexpr std::int64_t now = 1'800'000'000;
const std::string tenant = "0190a000-0000-7000-8000-000000000001";
const std::string secret = "an-hs256-secret-of-at-least-32-bytes!";

struct key_deleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using key_ptr = std::unique_ptr<EVP_PKEY, key_deleter>;

key_ptr rsa() { return key_ptr{EVP_RSA_gen(2048)}; }
key_ptr ec() { return key_ptr{EVP_EC_gen("P-256")}; }

std::string bn_param(EVP_PKEY* k, const char* name) {
  BIGNUM* bn = nullptr;
  REQUIRE(EVP_PKEY_get_bn_param(k, name, &bn) == 1);
  std::string out(static_cast<std::size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  BN_free(bn);
  return out;
}

nlohmann::json jwk(EVP_PKEY* k, const std::string& kid) {
  if (EVP_PKEY_is_a(k, "RSA"))
    return {{"kty", "RSA"},
            {"kid", kid},
            {"use", "sig"},
            {"alg", "RS256"},
            {"n", base64url_encode(bn_param(k, OSSL_PKEY_PARAM_RSA_N))},
            {"e", base64url_encode(bn_param(k, OSSL_PKEY_PARAM_RSA_E))}};
  unsigned char pub[65];
  std::size_t len = 0;
  REQUIRE(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub, &len) == 1);
  REQUIRE(len == 65);
  std::string p{reinterpret_cast<char*>(pub), len};
  return {{"kty", "EC"},
          {"kid", kid},
          {"crv", "P-256"},
          {"x", base64url_encode(p.substr(1, 32))},
          {"y", base64url_encode(p.substr(33, 32))}};
}

std::string sign(EVP_PKEY* k, const std::string& input) {
  auto* ctx = EVP_MD_CTX_new();
  std::size_t len = 0;
  REQUIRE(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, k) == 1);
  REQUIRE(EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1);
  std::string sig(len, '\0');
  REQUIRE(EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                         reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1);
  EVP_MD_CTX_free(ctx);
  sig.resize(len);
  if (EVP_PKEY_is_a(k, "EC")) { // DER -> r||s, as JWS wants it
    const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    std::string raw(64, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(raw.data()), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
    ECDSA_SIG_free(es);
    return raw;
  }
  return sig;
}

std::string hmac(const std::string& key, const std::string& input) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(input.data()),
       input.size(), mac, &len);
  return {reinterpret_cast<char*>(mac), len};
}

nlohmann::json claims() {
  return {{"iss", "https://idp.example/realms/colony"},
          {"aud", "colony-api"},
          {"sub", "user-1"},
          {"exp", now + 300},
          {"iat", now},
          {"tenant_id", tenant},
          {"roles", {"admin"}}};
}

std::string token(const nlohmann::json& header, const nlohmann::json& payload, EVP_PKEY* key = nullptr,
                  const std::string& hs_key = secret) {
  auto input = base64url_encode(header.dump()) + "." + base64url_encode(payload.dump());
  auto alg = header.value("alg", "");
  std::string sig = alg == "HS256" ? hmac(hs_key, input) : key != nullptr ? sign(key, input) : std::string{};
  return input + "." + base64url_encode(sig);
}

struct temp_jwks {
  std::filesystem::path path;
  explicit temp_jwks(const nlohmann::json& keys) {
    path = std::filesystem::temp_directory_path() /
      ("colony-jwks-" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) + ".json");
    write(keys);
  }
  void write(const nlohmann::json& keys) const {
    auto tmp = path.string() + ".tmp";
    std::ofstream{tmp} << nlohmann::json{{"keys", keys}}.dump();
    std::filesystem::rename(tmp, path);
  }
  ~temp_jwks() { std::filesystem::remove(path); }
};

/// A tiny HTTP server on loopback that answers every GET with `body` (or 404).
class jwks_server {
public:
  jwks_server() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(fd_, 16);
    thread_ = std::thread{[this] { serve(); }};
  }
  ~jwks_server() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  void set(std::string body) {
    std::lock_guard lock{mu_};
    body_ = std::move(body);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/certs"; }
  int hits() const { return hits_; }

private:
  void serve() {
    while (!stop_) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0)
        return;
      char buf[4096];
      (void)::read(c, buf, sizeof buf); // one small GET
      std::string body;
      {
        std::lock_guard lock{mu_};
        body = body_;
      }
      ++hits_;
      auto head = body.empty()
        ? std::string{"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"}
        : "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\n";
      auto msg = head + "Connection: close\r\n\r\n" + body;
      (void)::write(c, msg.data(), msg.size());
      ::close(c);
    }
  }
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::string body_;
  std::atomic<bool> stop_{false};
  std::atomic<int> hits_{0};
};

principal ok(const adapters::auth_result& r) {
  if (auto* e = std::get_if<auth_error>(&r))
    FAIL("refused: " << e->description);
  return std::get<principal>(r);
}

std::string refused(const adapters::auth_result& r) {
  REQUIRE(std::holds_alternative<auth_error>(r));
  CHECK(std::get<auth_error>(r).error == "invalid_token");
  return std::get<auth_error>(r).description;
}

jwt_options options(const std::string& jwks = {}) {
  jwt_options o;
  o.hs256_secret = secret;
  o.jwks = jwks;
  o.issuer = "https://idp.example/realms/colony";
  o.audience = "colony-api";
  return o;
}

} // namespace

TEST_CASE("HS256: a good token maps its claims; forged, expired, early, foreign tokens are refused") {
  jwt_verifier v{options()};
  nlohmann::json hs{{"alg", "HS256"}, {"typ", "JWT"}};
  auto who = ok(v.verify(token(hs, claims()), now));
  CHECK(who.tenant_id == tenant);
  CHECK(who.subject == "user-1");
  CHECK(who.roles == std::vector<std::string>{"admin"});
  CHECK(who.credential == "jwt:https://idp.example/realms/colony#user-1");

  auto good = token(hs, claims());
  auto forged = good;
  forged[forged.rfind('.') + 3] = forged[forged.rfind('.') + 3] == 'A' ? 'B' : 'A';
  CHECK(refused(v.verify(forged, now)) == "the signature does not verify");
  auto more = claims();
  more["roles"] = {"owner"};
  auto tampered = token(hs, more);
  tampered = tampered.substr(0, tampered.rfind('.')) + good.substr(good.rfind('.')); // old signature, new claims
  CHECK(refused(v.verify(tampered, now)) == "the signature does not verify");
  CHECK(refused(v.verify(token(hs, claims(), nullptr, "another-secret-of-at-least-32-bytes"), now)) ==
        "the signature does not verify");

  auto c = claims();
  c["exp"] = now - 61;
  CHECK(refused(v.verify(token(hs, c), now)) == "the token expired");
  c["exp"] = now - 59; // within the 60 s leeway
  ok(v.verify(token(hs, c), now));
  c = claims();
  c.erase("exp");
  CHECK(refused(v.verify(token(hs, c), now)) == "the token has no exp");
  c = claims();
  c["nbf"] = now + 120;
  CHECK(refused(v.verify(token(hs, c), now)).find("not valid yet") != std::string::npos);
  c["nbf"] = now + 30;
  ok(v.verify(token(hs, c), now));
  c = claims();
  c["iss"] = "https://evil.example";
  CHECK(refused(v.verify(token(hs, c), now)) == "the token was issued by another issuer");
  c = claims();
  c["aud"] = {"other-api", "colony-api"};
  ok(v.verify(token(hs, c), now));
  c["aud"] = "other-api";
  CHECK(refused(v.verify(token(hs, c), now)) == "the token is meant for another audience");
  c = claims();
  c["tenant_id"] = "acme";
  CHECK(refused(v.verify(token(hs, c), now)).find("not a tenant id") != std::string::npos);
}

TEST_CASE("alg none, unknown algs, crit and garbage are refused") {
  jwt_verifier v{options()};
  CHECK(refused(v.verify(token({{"alg", "none"}}, claims()), now)).find("never none") != std::string::npos);
  auto none_no_sig = base64url_encode(R"({"alg":"none"})") + "." + base64url_encode(claims().dump()) + ".";
  CHECK(refused(v.verify(none_no_sig, now)).find("never none") != std::string::npos);
  CHECK(refused(v.verify(token({{"alg", "HS512"}}, claims()), now)).find("not accepted") != std::string::npos);
  CHECK(refused(v.verify(token({{"alg", "HS256"}, {"crit", {"exp"}}}, claims()), now)).find("crit") !=
        std::string::npos);
  for (const auto& bad : std::vector<std::string>{"", "a.b", "a.b.c.d", "!!.??.**", "e30.e30.", std::string(9000, 'a')})
    refused(v.verify(bad, now));
  refused(v.verify(base64url_encode("[]") + "." + base64url_encode("{}") + ".", now));
}

TEST_CASE("RS256 and ES256 from a JWKS file: kid selects the key; HS/RS confusion is refused") {
  auto r = rsa();
  auto e = ec();
  temp_jwks file{nlohmann::json::array({jwk(r.get(), "rsa-1"), jwk(e.get(), "ec-1")})};
  jwt_options o = options(file.path.string());
  o.hs256_secret.clear(); // like a Keycloak set-up: no shared secret
  jwt_verifier v{o};
  CHECK(v.key_count() == 2);
  ok(v.verify(token({{"alg", "RS256"}, {"kid", "rsa-1"}}, claims(), r.get()), now));
  ok(v.verify(token({{"alg", "ES256"}, {"kid", "ec-1"}}, claims(), e.get()), now));
  // Without a kid, the only key of the alg's type is used.
  ok(v.verify(token({{"alg", "RS256"}}, claims(), r.get()), now));
  // Signed by a key that is not in the set, under a kid that is.
  auto stranger = rsa();
  CHECK(refused(v.verify(token({{"alg", "RS256"}, {"kid", "rsa-1"}}, claims(), stranger.get()), now)) ==
        "the signature does not verify");
  CHECK(refused(v.verify(token({{"alg", "RS256"}, {"kid", "nope"}}, claims(), r.get()), now)) ==
        "no RS256 key with kid 'nope'");
  // An ES256 alg with an RSA kid finds no key (the kid is of another type).
  refused(v.verify(token({{"alg", "ES256"}, {"kid", "rsa-1"}}, claims(), e.get()), now));
  // HS/RS confusion: HS256 "signed" with the public key's bytes as the secret.
  auto pub = jwk(r.get(), "rsa-1").dump();
  CHECK(refused(v.verify(token({{"alg", "HS256"}, {"kid", "rsa-1"}}, claims(), nullptr, pub), now)) ==
        "alg HS256 is not accepted here");
  // Keycloak puts roles under realm_access.roles.
  jwt_options kc = o;
  kc.roles_claim = "realm_access.roles";
  jwt_verifier kv{kc};
  auto c = claims();
  c.erase("roles");
  c["realm_access"] = {{"roles", {"viewer", "offline_access"}}};
  CHECK(ok(kv.verify(token({{"alg", "RS256"}, {"kid", "rsa-1"}}, c, r.get()), now)).roles ==
        std::vector<std::string>{"viewer", "offline_access"});
}

TEST_CASE("rotated keys: a new kid in the rewritten file is picked up at once, a removed one stops working") {
  auto old_key = rsa();
  auto new_key = rsa();
  temp_jwks file{nlohmann::json::array({jwk(old_key.get(), "2026-10")})};
  jwt_verifier v{options(file.path.string())};
  ok(v.verify(token({{"alg", "RS256"}, {"kid", "2026-10"}}, claims(), old_key.get()), now));
  refused(v.verify(token({{"alg", "RS256"}, {"kid", "2026-11"}}, claims(), new_key.get()), now));
  std::this_thread::sleep_for(std::chrono::milliseconds(150)); // unknown kids re-read the file at most every 100 ms
  file.write(nlohmann::json::array({jwk(new_key.get(), "2026-11")}));
  ok(v.verify(token({{"alg", "RS256"}, {"kid", "2026-11"}}, claims(), new_key.get()), now));
  CHECK(refused(v.verify(token({{"alg", "RS256"}, {"kid", "2026-10"}}, claims(), old_key.get()), now)) ==
        "no RS256 key with kid '2026-10'");
}

TEST_CASE("keys from a JWKS URL: fetched at start, re-fetched periodically, so a rotation is picked up") {
  auto first = rsa();
  auto second = ec();
  jwks_server server;
  server.set(nlohmann::json{{"keys", {jwk(first.get(), "k1")}}}.dump());
  auto o = options(server.url());
  o.jwks_refresh = std::chrono::seconds(1);
  jwt_verifier v{o};
  CHECK(v.key_count() == 1);
  ok(v.verify(token({{"alg", "RS256"}, {"kid", "k1"}}, claims(), first.get()), now));
  server.set(nlohmann::json{{"keys", {jwk(second.get(), "k2")}}}.dump());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (v.key_count() != 1 ||
         std::holds_alternative<auth_error>(
           v.verify(token({{"alg", "ES256"}, {"kid", "k2"}}, claims(), second.get()), now))) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  refused(v.verify(token({{"alg", "RS256"}, {"kid", "k1"}}, claims(), first.get()), now));
  server.set({}); // the issuer fails: the keys we have stay
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ok(v.verify(token({{"alg", "ES256"}, {"kid", "k2"}}, claims(), second.get()), now));
  CHECK(server.hits() >= 3);
  CHECK_THROWS_WITH(jwt_verifier{options(server.url())}, Catch::Contains("auth-jwks") && Catch::Contains("404"));
}

TEST_CASE("a broken JWKS stops the start with a message naming the option") {
  temp_jwks file{nlohmann::json::array({{{"kty", "RSA"}, {"kid", "x"}, {"n", "!!"}, {"e", "AQAB"}}})};
  try {
    jwt_verifier v{options(file.path.string())};
    FAIL("accepted a broken JWKS");
  } catch (const std::runtime_error& e) {
    CHECK(std::string{e.what()}.find("auth-jwks") != std::string::npos);
  }
  CHECK_THROWS_AS(jwt_verifier{options("/nonexistent/jwks.json")}, std::runtime_error);
}

TEST_CASE("API keys: minted at random, stored as a hash, revoked and expired keys are refused") {
  auto a = adapters::mint_api_key(tenant, {"admin"}, "ci", "api_key:x", 1000, 0);
  auto b = adapters::mint_api_key(tenant, {"admin"}, "ci", "api_key:x", 1000, 0);
  CHECK(a.key != b.key);
  CHECK(a.row.id != b.row.id);
  CHECK(adapters::looks_like_api_key(a.key));
  CHECK(adapters::api_key_id(a.key) == a.row.id);
  CHECK(a.row.hash == adapters::api_key_hash(a.key));
  CHECK(a.row.hash.find(a.key) == std::string::npos);
  CHECK(adapters::same_hash(a.row.hash, adapters::api_key_hash(a.key)));
  CHECK_FALSE(adapters::same_hash(a.row.hash, adapters::api_key_hash(b.key)));
  CHECK_FALSE(adapters::api_key_id("colony_short"));
  CHECK_FALSE(adapters::api_key_id(a.key.substr(0, a.key.size() - 1)));
  auto upper = a.key;
  upper[8] = 'G';
  CHECK_FALSE(adapters::api_key_id(upper));

  auto who = std::get<principal>(adapters::api_key_principal(a.row, 2000));
  CHECK(who.tenant_id == tenant);
  CHECK(who.credential == "api_key:" + a.row.id);
  auto revoked = a.row;
  revoked.revoked_us = 1500;
  CHECK(std::get<auth_error>(adapters::api_key_principal(revoked, 2000)).description == "the API key was revoked");
  auto expiring = a.row;
  expiring.expires_us = 2000;
  CHECK(std::holds_alternative<principal>(adapters::api_key_principal(expiring, 1999)));
  CHECK(std::get<auth_error>(adapters::api_key_principal(expiring, 2000)).description == "the API key expired");
}

TEST_CASE("the admin key file is written with mode 0600") {
  auto path = std::filesystem::temp_directory_path() / "colony-admin-key-test";
  adapters::write_secret_file(path.string(), "colony_secret");
  auto perms = std::filesystem::status(path).permissions();
  CHECK((perms & std::filesystem::perms::all) ==
        (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
  std::ifstream in{path};
  std::string text;
  std::getline(in, text);
  CHECK(text == "colony_secret");
  std::filesystem::remove(path);
}
