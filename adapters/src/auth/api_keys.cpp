// API keys: minting, hashing, and what a stored key stands for. See auth.hpp.
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "colony/adapters/auth.hpp"
#include "colony/protocol/base64url.hpp"

namespace colony::adapters {
namespace {

constexpr std::string_view prefix = "colony_";
constexpr std::size_t id_hex = 32;

std::string hex(const unsigned char* p, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}

} // namespace

bool looks_like_api_key(std::string_view token) { return token.starts_with(prefix); }

std::optional<std::string> api_key_id(std::string_view token) {
  // colony_<32 hex id>_<43 base64url secret>
  if (!token.starts_with(prefix) || token.size() != prefix.size() + id_hex + 1 + 43 ||
      token[prefix.size() + id_hex] != '_')
    return std::nullopt;
  auto id = token.substr(prefix.size(), id_hex);
  if (id.find_first_not_of("0123456789abcdef") != std::string_view::npos)
    return std::nullopt;
  return std::string{id};
}

std::string api_key_hash(std::string_view token) {
  // Fetched once: with OpenSSL 3, EVP_sha256() makes EVP_Digest look the
  // implementation up on every call (EVP_MD_fetch, about half the cost of
  // hashing a key; every API-key request hashes one). Never freed: it lives
  // as long as the process.
  static const EVP_MD* const fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(token.data(), token.size(), md, &len, fetched != nullptr ? fetched : EVP_sha256(), nullptr);
  return hex(md, len);
}

bool same_hash(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

minted_key mint_api_key(std::string tenant_id, std::vector<std::string> roles, std::string name, std::string created_by,
                        std::int64_t now_us, std::int64_t expires_us) {
  unsigned char id[id_hex / 2];
  unsigned char secret[32];
  if (RAND_bytes(id, sizeof id) != 1 || RAND_bytes(secret, sizeof secret) != 1)
    throw std::runtime_error("no randomness for an API key");
  minted_key out;
  out.row.id = hex(id, sizeof id);
  out.key = std::string{prefix} + out.row.id + "_" +
    protocol::base64url_encode(std::string_view{reinterpret_cast<const char*>(secret), sizeof secret});
  OPENSSL_cleanse(secret, sizeof secret);
  out.row.tenant_id = std::move(tenant_id);
  out.row.roles = std::move(roles);
  out.row.name = std::move(name);
  out.row.created_by = std::move(created_by);
  out.row.created_us = now_us;
  out.row.expires_us = expires_us;
  out.row.hash = api_key_hash(out.key);
  return out;
}

auth_result api_key_principal(const actors::api_key_row& row, std::int64_t now_us) {
  if (row.revoked_us != 0)
    return auth_error{"invalid_token", "the API key was revoked"};
  if (row.expires_us != 0 && now_us >= row.expires_us)
    return auth_error{"invalid_token", "the API key expired"};
  actors::access::principal who;
  who.kind = "api_key";
  who.subject = row.id;
  who.credential = "api_key:" + row.id;
  who.tenant_id = row.tenant_id;
  who.roles = row.roles;
  return who;
}

void write_secret_file(const std::string& path, const std::string& key) {
  auto tmp = path + ".tmp";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    throw std::runtime_error("cannot create '" + tmp + "': " + std::strerror(errno));
  auto text = key + "\n";
  bool ok = ::fchmod(fd, 0600) == 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
    ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok)
      err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot write '" + path + "': " + std::strerror(err));
  }
}

} // namespace colony::adapters
