// JWT parsing and verification, and API key parsing.
// Input byte 0 selects the mode:
//   even: the rest is a bearer token. It was not signed with our keys (they
//         are made at start-up), so it must be refused: accepting it would be
//         a forgery.
//   odd:  the rest is a claims document, signed here with the HS256 secret
//         and verified: the claim checks and mapping must hold up.
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "colony/adapters/auth.hpp"
#include "colony/protocol/base64url.hpp"
#include "colony/protocol/time.hpp"
#include "colony/runtime/log.hpp"

using namespace colony;

namespace {

const std::string secret = "fuzz-secret-that-is-32-bytes-long!!";

adapters::jwt_verifier& verifier() {
  static std::unique_ptr<adapters::jwt_verifier> v = [] {
    log::init(log::format::text, log::level::error);
    // A JWKS with one RSA and one EC key of our own (so RS256/ES256 paths run).
    auto* rsa = EVP_RSA_gen(2048);
    auto* ec = EVP_EC_gen("P-256");
    BIGNUM *n = nullptr, *e = nullptr;
    EVP_PKEY_get_bn_param(rsa, "n", &n);
    EVP_PKEY_get_bn_param(rsa, "e", &e);
    auto bn = [](BIGNUM* b) {
      std::string s(static_cast<std::size_t>(BN_num_bytes(b)), '\0');
      BN_bn2bin(b, reinterpret_cast<unsigned char*>(s.data()));
      return protocol::base64url_encode(s);
    };
    unsigned char pub[65];
    std::size_t len = 0;
    EVP_PKEY_get_octet_string_param(ec, "pub", pub, sizeof pub, &len);
    std::string p{reinterpret_cast<char*>(pub), len};
    auto path = std::filesystem::temp_directory_path() / "colony-fuzz-jwks.json";
    std::ofstream{path} << R"({"keys":[{"kty":"RSA","kid":"r1","n":")" << bn(n) << R"(","e":")" << bn(e)
                        << R"("},{"kty":"EC","kid":"e1","crv":"P-256","x":")"
                        << protocol::base64url_encode(p.substr(1, 32)) << R"(","y":")"
                        << protocol::base64url_encode(p.substr(33, 32)) << R"("}]})";
    BN_free(n);
    BN_free(e);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    adapters::jwt_options o;
    o.hs256_secret = secret;
    o.jwks = path.string();
    o.issuer = "https://idp.example";
    o.audience = "colony";
    o.roles_claim = "realm_access.roles";
    return std::make_unique<adapters::jwt_verifier>(o);
  }();
  return *v;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0)
    return 0;
  auto& v = verifier();
  std::string rest{reinterpret_cast<const char*>(data) + 1, size - 1};
  if ((data[0] & 1) == 0) {
    if (std::holds_alternative<actors::access::principal>(v.verify(rest, 1'800'000'000)))
      std::abort(); // a token we never signed was accepted
    if (auto id = adapters::api_key_id(rest); id && id->size() != 32)
      std::abort();
    return 0;
  }
  auto input = protocol::base64url_encode(R"({"alg":"HS256"})") + "." + protocol::base64url_encode(rest);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &mac_len);
  auto token = input + "." + protocol::base64url_encode(std::string{reinterpret_cast<char*>(mac), mac_len});
  auto r = v.verify(token, 1'800'000'000);
  if (auto* who = std::get_if<actors::access::principal>(&r))
    if (!who->tenant_id.empty() && !protocol::is_uuid(who->tenant_id))
      std::abort();
  return 0;
}
