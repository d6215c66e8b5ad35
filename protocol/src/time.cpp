#include "colony/protocol/time.hpp"

#include <array>
#include <atomic>
#include <cstdio>
#include <chrono>
#include <ctime>
#include <google/protobuf/timestamp.pb.h>
#include <mutex>
#include <random>

namespace colony::protocol {

namespace {
std::atomic<std::int64_t> clock_offset_us{0};
} // namespace

std::int64_t now_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count() +
    clock_offset_us.load(std::memory_order_relaxed);
}

void set_clock_offset_us(std::int64_t offset_us) { clock_offset_us.store(offset_us); }

std::string month_of(std::int64_t us) {
  std::time_t t = static_cast<std::time_t>(us / 1'000'000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02d", tm.tm_year + 1900, tm.tm_mon + 1);
  return buf;
}

void set_timestamp(google::protobuf::Timestamp& ts, std::int64_t us) {
  ts.set_seconds(us / 1'000'000);
  ts.set_nanos(static_cast<std::int32_t>((us % 1'000'000) * 1000));
}

std::int64_t timestamp_us(const google::protobuf::Timestamp& ts) {
  return ts.seconds() * 1'000'000 + ts.nanos() / 1000;
}

std::string format_rfc3339(std::int64_t us) {
  std::time_t secs = static_cast<std::time_t>(us / 1'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%06lldZ", static_cast<long long>(us % 1'000'000));
  return buf;
}

std::string new_uuid_v7() {
  // 48-bit millisecond timestamp, then a 12-bit counter in rand_a (method 1 of
  // RFC 9562 section 6.2) so ids from one process sort in creation order, then
  // 62 random bits.
  static std::mutex mtx;
  static std::mt19937_64 rng{std::random_device{}()};
  static std::uint64_t last_ms = 0;
  static std::uint16_t counter = 0;
  std::uint64_t ms;
  std::uint16_t seq;
  std::uint64_t rnd;
  {
    std::lock_guard<std::mutex> guard{mtx};
    ms = static_cast<std::uint64_t>(now_us() / 1000);
    if (ms <= last_ms) {
      ms = last_ms;
      if (++counter > 0x0fff) { // counter overflow: borrow the next millisecond
        ++ms;
        counter = 0;
      }
    } else {
      counter = static_cast<std::uint16_t>(rng() & 0x01ff); // leave room to count up
    }
    last_ms = ms;
    seq = counter;
    rnd = rng();
  }
  std::array<unsigned char, 16> b{};
  for (int i = 0; i < 6; ++i)
    b[i] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  b[6] = static_cast<unsigned char>(0x70 | ((seq >> 8) & 0x0f));
  b[7] = static_cast<unsigned char>(seq & 0xff);
  for (int i = 8; i < 16; ++i)
    b[i] = static_cast<unsigned char>(rnd >> (8 * (i - 8)));
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      out += '-';
    out += hex[b[i] >> 4];
    out += hex[b[i] & 15];
  }
  return out;
}

bool is_uuid(std::string_view s) {
  if (s.size() != 36)
    return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-')
        return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

} // namespace colony::protocol
