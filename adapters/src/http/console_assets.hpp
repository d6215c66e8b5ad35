// The web console's files (adapters/src/http/console/), embedded at build
// time by cmake/EmbedAssets.cmake: nothing is read or fetched at run time.
#pragma once

#include <string_view>
#include <vector>

namespace colony::adapters::http {

struct asset {
  std::string_view name;         // file name, e.g. "console.js"
  std::string_view content_type; // with charset for text
  std::string_view etag;         // quoted content hash
  std::string_view body;
  std::string_view gzip; // the same, gzip -9
};

/// Every file of the console, sorted by name.
[[nodiscard]] const std::vector<asset>& console_assets();

} // namespace colony::adapters::http
