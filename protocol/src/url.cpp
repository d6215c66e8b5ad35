#include "colony/protocol/url.hpp"

namespace colony::protocol {

std::optional<http_url> parse_http_url(const std::string& url) {
  http_url out;
  out.tls = url.starts_with("https://");
  if ((!out.tls && !url.starts_with("http://")) || url.size() > 2048)
    return std::nullopt;
  auto rest = url.substr(out.tls ? 8 : 7);
  auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  out.target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (authority.empty() || authority.find('@') != std::string::npos)
    return std::nullopt;
  auto colon = authority.rfind(':');
  if (colon != std::string::npos && authority.find(']') == std::string::npos) {
    out.host = authority.substr(0, colon);
    out.port = authority.substr(colon + 1);
    if (out.port.empty() || out.port.size() > 5 || out.port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(out.port) == 0 || std::stoi(out.port) > 65535)
      return std::nullopt;
  } else {
    out.host = authority;
    out.port = out.tls ? "443" : "80";
  }
  if (out.host.empty() || out.host.find_first_of(" \t\r\n/?#") != std::string::npos ||
      out.target.find_first_of(" \t\r\n") != std::string::npos)
    return std::nullopt;
  return out;
}

} // namespace colony::protocol
