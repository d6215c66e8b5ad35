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

/// Microseconds since the Unix epoch (system clock, plus the test offset).
[[nodiscard]] std::int64_t now_us();

/// Shifts now_us() by `offset_us` from here on (debug.clock-start: tests that
/// cross a month boundary). Call before other threads read the clock.
void set_clock_offset_us(std::int64_t offset_us);

/// The UTC month of `us`, "YYYY-MM": the period of monthly counters and quotas.
[[nodiscard]] std::string month_of(std::int64_t us);

void set_timestamp(google::protobuf::Timestamp& ts, std::int64_t us);
[[nodiscard]] std::int64_t timestamp_us(const google::protobuf::Timestamp& ts);

/// RFC 3339 UTC with microseconds, e.g. 2026-11-27T10:00:00.123456Z.
[[nodiscard]] std::string format_rfc3339(std::int64_t us);

/// A new UUIDv7 (RFC 9562) in canonical lower-case form; monotonic within a process.
[[nodiscard]] std::string new_uuid_v7();

/// True for a canonical (lower- or upper-case hex) UUID of any version.
[[nodiscard]] bool is_uuid(std::string_view s);

} // namespace colony::protocol
