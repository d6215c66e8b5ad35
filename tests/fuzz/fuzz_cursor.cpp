// Cursor decoding: any bytes as the ?cursor= of a list or the audit log.
// Property: a decoded cursor encodes back to one that decodes the same.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "http/api.hpp"

using namespace colony;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0)
    return 0;
  static const char* sorts[] = {"createdAt", "name", "slug", "email"};
  actors::list_query q;
  q.sort_field = sorts[data[0] % 4];
  q.descending = (data[0] & 4) != 0;
  std::string_view cursor{reinterpret_cast<const char*>(data) + 1, size - 1};
  if (!adapters::http::decode_list_cursor(cursor, q)) {
    actors::list_row last;
    last.id = q.after_id;
    last.sort_text = q.after_text;
    last.sort_number = q.after_number;
    actors::list_query again;
    again.sort_field = q.sort_field;
    again.descending = q.descending;
    if (adapters::http::decode_list_cursor(adapters::http::encode_list_cursor(q, last), again) ||
        again.after_id != q.after_id || again.after_text != q.after_text || again.after_number != q.after_number)
      std::abort();
  }
  if (auto pos = adapters::http::decode_audit_cursor(cursor)) {
    if (*pos <= 0 || adapters::http::decode_audit_cursor(adapters::http::encode_audit_cursor(*pos)) != pos)
      std::abort();
  }
  return 0;
}
