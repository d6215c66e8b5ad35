// Time and identifiers: UUIDv7 generation/validation and timestamp conversion.
// Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace google::protobuf {
class Timestamp;
}

namespace colony::protocol {

/// Microseconds since the Unix epoch (system clock).
[[nodiscard]] std::int64_t now_us();

void set_timestamp(google::protobuf::Timestamp& ts, std::int64_t us);
[[nodiscard]] std::int64_t timestamp_us(const google::protobuf::Timestamp& ts);

/// RFC 3339 UTC with microseconds, e.g. 2026-11-27T10:00:00.123456Z.
[[nodiscard]] std::string format_rfc3339(std::int64_t us);

/// A new UUIDv7 (RFC 9562) in canonical lower-case form; monotonic within a process.
[[nodiscard]] std::string new_uuid_v7();

/// True for a canonical (lower- or upper-case hex) UUID of any version.
[[nodiscard]] bool is_uuid(std::string_view s);

} // namespace colony::protocol
