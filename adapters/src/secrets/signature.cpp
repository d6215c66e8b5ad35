#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "colony/adapters/secrets.hpp"

namespace colony::adapters {

std::string timestamped_signature(std::string_view secret, std::int64_t t, std::string_view body) {
  std::string payload = std::to_string(t);
  payload += '.';
  payload.append(body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), mac, &len);
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[mac[i] >> 4];
    out += hex[mac[i] & 15];
  }
  return out;
}

std::string secret_box::key_id() const {
  std::string_view key{reinterpret_cast<const char*>(key_.data()), key_.size()};
  return timestamped_signature(key, 0, "colony secrets-key id").substr(0, 16);
}

} // namespace colony::adapters
