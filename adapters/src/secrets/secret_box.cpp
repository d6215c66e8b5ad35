#include "colony/adapters/secrets.hpp"

#include <algorithm>
#include <fcntl.h>
#include <fstream>
#include <iterator>
#include <memory>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdexcept>
#include <unistd.h>

#include "colony/protocol/base64url.hpp"

namespace colony::adapters {
namespace {

constexpr std::string_view prefix = "enc:v1:";
constexpr std::size_t nonce_size = 12, tag_size = 16;

using ctx_ptr = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

std::string key_text(const std::array<unsigned char, 32>& key) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : key) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

} // namespace

std::optional<secret_box> secret_box::from_text(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
    text.remove_suffix(1);
  std::array<unsigned char, 32> key{};
  if (text.size() == 64) {
    auto nibble = [](char c) -> int {
      return c >= '0' && c <= '9' ? c - '0'
        : c >= 'a' && c <= 'f'    ? c - 'a' + 10
        : c >= 'A' && c <= 'F'    ? c - 'A' + 10
                                  : -1;
    };
    for (std::size_t i = 0; i < 32; ++i) {
      int hi = nibble(text[2 * i]), lo = nibble(text[2 * i + 1]);
      if (hi < 0 || lo < 0)
        return std::nullopt;
      key[i] = static_cast<unsigned char>(hi * 16 + lo);
    }
    return secret_box{key};
  }
  auto raw = protocol::base64url_decode(text);
  if (!raw || raw->size() != 32)
    return std::nullopt;
  std::copy(raw->begin(), raw->end(), key.begin());
  return secret_box{key};
}

secret_box secret_box::from_file(const std::string& path) {
  std::ifstream in{path};
  if (in) {
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto box = from_text(text);
    if (!box)
      throw std::runtime_error("the secrets key file " + path + " does not hold a key (64 hex digits)");
    return *box;
  }
  std::array<unsigned char, 32> key{};
  if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1)
    throw std::runtime_error("no randomness for a new secrets key");
  // O_EXCL: two nodes starting on one data directory never write two keys.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    throw std::runtime_error("cannot create the secrets key file " + path);
  auto text = key_text(key) + "\n";
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok)
    throw std::runtime_error("cannot write the secrets key file " + path);
  return secret_box{key};
}

std::string secret_box::seal(std::string_view plain) const {
  unsigned char nonce[nonce_size];
  if (RAND_bytes(nonce, sizeof nonce) != 1)
    throw std::runtime_error("no randomness to seal a secret");
  ctx_ptr ctx{EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free};
  std::string out(nonce_size + plain.size() + tag_size, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  std::copy(nonce, nonce + nonce_size, o);
  int len = 0, fin = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), nonce) != 1 ||
      EVP_EncryptUpdate(ctx.get(), o + nonce_size, &len, reinterpret_cast<const unsigned char*>(plain.data()),
                        static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), o + nonce_size + len, &fin) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, tag_size, o + nonce_size + plain.size()) != 1)
    throw std::runtime_error("cannot seal a secret");
  return std::string{prefix} + protocol::base64url_encode(out);
}

std::optional<std::string> secret_box::open(std::string_view stored) const {
  if (!stored.starts_with(prefix))
    return std::string{stored};
  auto raw = protocol::base64url_decode(stored.substr(prefix.size()));
  if (!raw || raw->size() < nonce_size + tag_size)
    return std::nullopt;
  const auto* r = reinterpret_cast<const unsigned char*>(raw->data());
  auto n = raw->size() - nonce_size - tag_size;
  std::string plain(n, '\0');
  ctx_ptr ctx{EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free};
  int len = 0, fin = 0;
  std::array<unsigned char, tag_size> tag{};
  std::copy(r + nonce_size + n, r + nonce_size + n + tag_size, tag.begin());
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), r) != 1 ||
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()), &len, r + nonce_size,
                        static_cast<int>(n)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, tag_size, tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()) + len, &fin) != 1)
    return std::nullopt;
  return plain;
}

} // namespace colony::adapters
