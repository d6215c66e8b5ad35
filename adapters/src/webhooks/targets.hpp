// Webhook targets (private to the adapters): the address check shared by the
// API, at registration, and the notifier, after each resolution.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <optional>
#include <string>

#include "colony/adapters/webhooks.hpp"

namespace colony::adapters {

/// Why `addr` may not be a webhook target (loopback, link-local, private,
/// unspecified, multicast, special-purpose), or nullopt if it may.
[[nodiscard]] std::optional<std::string> refused_address(const boost::asio::ip::address& addr);

} // namespace colony::adapters
