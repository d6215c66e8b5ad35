// Reading what a request says: percent-decoding, the path and the query,
// media type parameters, entity tags (If-Match / If-None-Match) and integer
// parameters. Pure functions (fuzzed through tests/fuzz/fuzz_http.cpp).
#pragma once

#include <charconv>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace colony::adapters::http {

[[nodiscard]] std::string pct_decode(std::string_view s, bool plus_is_space);
/// The decoded segments of a path ("/a//b/" is {"a", "b"}).
[[nodiscard]] std::vector<std::string> split_path(std::string_view path);
/// The decoded query parameters; of a repeated one the last wins.
[[nodiscard]] std::map<std::string, std::string> parse_query(std::string_view q);
/// The value of parameter `name` in the parameters of a media type
/// ("; charset=UTF-8; x=y"), lower-cased and unquoted; nullopt when absent.
[[nodiscard]] std::optional<std::string> media_type_param(std::string_view params, std::string_view name);

/// The entity tags of an If-Match / If-None-Match list: (weak, version),
/// version nullopt for a tag that is not one of ours.
[[nodiscard]] std::vector<std::pair<bool, std::optional<std::uint32_t>>> entity_tags(std::string_view v);
/// If-Match (RFC 9110 13.1.1): empty or "*" is no condition; otherwise
/// the list of versions any of which may match, with strong comparison:
/// a weak tag (W/"3") or one that is not ours never matches, so a header
/// with nothing usable is {0} (version 0 never exists: 412).
[[nodiscard]] std::vector<std::uint32_t> if_match_versions(std::string_view header);
/// If-None-Match on a read (RFC 9110 13.1.2, weak comparison): true if
/// the entity at `version` matches, so the answer is 304.
[[nodiscard]] bool none_match_hits(std::string_view header, std::uint32_t version);

/// The whole of `s` as a decimal integer; nullopt otherwise.
template <class Int>
[[nodiscard]] std::optional<Int> parse_int(std::string_view s) {
  Int n{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc{} || p != s.data() + s.size() || s.empty())
    return std::nullopt;
  return n;
}

} // namespace colony::adapters::http
