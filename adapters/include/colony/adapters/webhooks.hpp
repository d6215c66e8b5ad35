// Outbound webhooks: the notifier actor that delivers committed events to
// the tenants' endpoints (signed like Stripe's: Colony-Signature t=…,v1=…).
#pragma once

#include <caf/actor.hpp>
#include <caf/fwd.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "colony/actors/ports/outbound_http.hpp"
#include "colony/actors/ports/store_port.hpp"
#include "colony/adapters/secrets.hpp"
#include "colony/protocol/url.hpp"
#include "colony/runtime/module.hpp"
#include "colony/runtime/singleton.hpp"

namespace colony::adapters {

struct webhook_options {
  int max_attempts = 8;                         // then the delivery is dead
  std::chrono::milliseconds retry_base{1000};   // first retry after ~this, doubling, capped at 1 h
  std::chrono::milliseconds timeout{10'000};    // per attempt: connect, send and answer
  std::chrono::milliseconds poll_interval{200}; // how often new events and due retries are looked for
  int max_in_flight = 64;                       // concurrent attempts
  std::string ca_file;                // extra trusted CAs (PEM) for https endpoints; the system's are always trusted
  bool allow_private_targets = false; // deliver to loopback, private, link-local addresses too (tests)
  std::shared_ptr<const secret_box> secrets; // opens the endpoints' sealed secrets; null: stored as they are
  std::shared_ptr<runtime::singleton> owner =
    runtime::single_node_singleton();        // fans out while "webhooks" is granted; sends for owner->shards()
  std::shared_ptr<runtime::metrics> metrics; // colony_webhook_attempts_total; may be null
};

/// An endpoint URL Colony can deliver to (protocol/url.hpp parses it).
using parsed_url = protocol::http_url;

/// The server-side request forgery check of an endpoint: nullopt if `url`
/// may be delivered to, else why not. A host that is an IP address, or (with
/// `resolve`: getaddrinfo, which blocks) a name that resolves to one, that is
/// loopback, link-local (169.254.0.0/16 and fe80::/10: the cloud metadata
/// services), private (RFC 1918, fc00::/7, 100.64.0.0/10), unspecified,
/// multicast or otherwise special-purpose is refused. A name that does not
/// resolve passes: the notifier checks every address again at delivery.
[[nodiscard]] std::optional<std::string> check_webhook_target(const parsed_url& url, bool resolve);

/// Stop it with actors::stop_atom.
[[nodiscard]] caf::actor spawn_webhook_notifier(caf::actor_system& sys, actors::store_port store, webhook_options opts);

/// colony.http.request's client (actors/ports/outbound_http.hpp): the SSRF
/// rules and trusted CAs of webhook deliveries; answers larger than
/// `max_body` are an error ("too large"). Stop it with actors::stop_atom.
struct outbound_http_options {
  bool allow_private_targets = false;
  std::string ca_file;
  std::size_t max_body = 1 << 20;
};
[[nodiscard]] actors::outbound_http spawn_outbound_http(caf::actor_system& sys, outbound_http_options opts);

/// The webhooks module (webhooks.*): the notifier.
[[nodiscard]] std::unique_ptr<runtime::module> webhooks_module();

} // namespace colony::adapters
