// Fetches a JWKS document over http(s) (Beast, OpenSSL; the server's
// certificate is verified against the system's CAs and `ca_file`).
#pragma once

#include <chrono>
#include <string>

namespace colony::adapters::auth {

/// The body of a 200 answer to GET `url`. Throws std::runtime_error naming
/// what failed (never a secret: JWKS URLs carry none).
std::string fetch_jwks(const std::string& url, const std::string& ca_file, std::chrono::seconds timeout);

} // namespace colony::adapters::auth
