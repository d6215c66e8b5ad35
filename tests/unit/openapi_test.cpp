// The router and /openapi.json must describe the same routes.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <set>

#include "colony/adapters/http.hpp"

TEST_CASE("every routed path and method is in the OpenAPI document, and nothing else") {
  auto doc = nlohmann::json::parse(colony::adapters::openapi_document());
  CHECK(doc.at("openapi").get<std::string>().rfind("3.1", 0) == 0);
  std::set<std::string> documented;
  for (auto& [path, item] : doc.at("paths").items())
    for (auto& [method, op] : item.items()) {
      if (method == "parameters")
        continue;
      std::string upper;
      for (char c : method)
        upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      documented.insert(upper + " " + path);
      CHECK(op.contains("responses"));
      CHECK(op.contains("operationId"));
    }
  std::set<std::string> routed;
  for (const auto& r : colony::adapters::api_routes())
    routed.insert(r.method + " " + r.path);
  CHECK(routed.size() >= 17);
  CHECK(documented == routed);
}
