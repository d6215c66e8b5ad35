// Which addresses a webhook may be delivered to (server-side request
// forgery): a tenant's endpoint URL must not make the node call into its own
// network, its own loopback services or the cloud's metadata service.
#include "targets.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>
#include <netdb.h>
#include <sys/socket.h>

namespace colony::adapters {
namespace {

namespace ip = boost::asio::ip;

std::optional<std::string> refused_v4(const ip::address_v4& a) {
  auto b = a.to_bytes();
  auto in = [&](std::uint8_t o0, std::uint8_t o1, int bits) {
    std::uint32_t v = (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) | b[3];
    std::uint32_t net = (std::uint32_t{o0} << 24) | (std::uint32_t{o1} << 16);
    std::uint32_t mask = bits == 0 ? 0 : ~std::uint32_t{0} << (32 - bits);
    return (v & mask) == (net & mask);
  };
  if (in(0, 0, 8))
    return "an unspecified address";
  if (in(127, 0, 8))
    return "a loopback address";
  if (in(169, 254, 16))
    return "a link-local address (cloud metadata services live there)";
  if (in(10, 0, 8) || in(172, 16, 12) || in(192, 168, 16))
    return "a private address (RFC 1918)";
  if (in(100, 64, 10))
    return "a shared address (RFC 6598, carrier NAT and some metadata services)";
  if (in(224, 0, 4))
    return "a multicast address";
  if (in(240, 0, 4))
    return "a reserved or broadcast address";
  if ((b[0] == 192 && b[1] == 0 && (b[2] == 0 || b[2] == 2)) || in(198, 18, 15) ||
      (b[0] == 198 && b[1] == 51 && b[2] == 100) || (b[0] == 203 && b[1] == 0 && b[2] == 113))
    return "a special-purpose address (RFC 6890)";
  return std::nullopt;
}

} // namespace

std::optional<std::string> refused_address(const ip::address& addr) {
  if (addr.is_v4())
    return refused_v4(addr.to_v4());
  auto a = addr.to_v6();
  auto b = a.to_bytes();
  if (a.is_v4_mapped())
    return refused_v4(ip::make_address_v4(ip::v4_mapped, a));
  // 64:ff9b::/96 (NAT64) carries an IPv4 address in its last four bytes.
  static constexpr std::array<std::uint8_t, 12> nat64{0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  if (std::equal(nat64.begin(), nat64.end(), b.begin()))
    return refused_v4(ip::address_v4{{b[12], b[13], b[14], b[15]}});
  if (a.is_unspecified())
    return "an unspecified address";
  if (a.is_loopback())
    return "a loopback address";
  if (a.is_link_local() || (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)) // fe80::/10, and the old site-local fec0::/10
    return "a link-local address";
  if ((b[0] & 0xfe) == 0xfc)
    return "a private address (unique local, fc00::/7)";
  if (a.is_multicast())
    return "a multicast address";
  if (a.is_v4_compatible() || (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) || b[0] == 0)
    return "a special-purpose address";
  return std::nullopt;
}

std::optional<std::string> check_webhook_target(const parsed_url& url, bool resolve) {
  std::string host = url.host;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  auto literal = ip::make_address(host, ec);
  if (!ec) {
    if (auto why = refused_address(literal))
      return "the host is " + *why;
    return std::nullopt;
  }
  if (!resolve)
    return std::nullopt;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0)
    return std::nullopt; // not resolvable now: checked again at every delivery
  std::optional<std::string> refused;
  for (auto* ai = res; ai != nullptr && !refused; ai = ai->ai_next) {
    ip::tcp::endpoint ep;
    if (ai->ai_addrlen > ep.capacity())
      continue;
    std::memcpy(ep.data(), ai->ai_addr, ai->ai_addrlen);
    ep.resize(ai->ai_addrlen);
    if (auto why = refused_address(ep.address()))
      refused = "the host resolves to " + *why;
  }
  freeaddrinfo(res);
  return refused;
}

} // namespace colony::adapters
