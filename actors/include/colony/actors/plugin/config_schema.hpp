// A plugin's configSchema: the subset of JSON Schema (2020-12) Colony
// checks, and a tenant's config validated against it (docs/plugins.md).
//
// Supported: type (one or a list), enum, const, properties, required,
// additionalProperties (a boolean or a schema), minProperties,
// maxProperties, items, minItems, maxItems, uniqueItems, minimum, maximum,
// exclusiveMinimum, exclusiveMaximum, multipleOf, minLength, maxLength
// (code points), allOf, anyOf, oneOf, not; the annotations title,
// description, default, examples, deprecated, readOnly, writeOnly,
// $schema, $id, $comment and format (an annotation, as 2020-12 has it).
// Anything else (pattern, $ref, if/then/else, ...) is refused when the
// version is published, so a schema never passes a config it did not check.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "colony/protocol/json.hpp"

namespace colony::actors {

/// Why `schema_json` is not a schema Colony can check (the JSON path of the
/// first offending keyword under `base`, e.g. "configSchema.properties.x.pattern").
[[nodiscard]] std::optional<protocol::field_error> check_config_schema(const std::string& schema_json,
                                                                       const std::string& base = "configSchema");

/// The places where `config_json` breaks `schema_json` (a schema that passed
/// check_config_schema), as paths under `base` ("config.domains[0]"); at most 20.
[[nodiscard]] std::vector<protocol::field_error>
validate_config(const std::string& schema_json, const std::string& config_json, const std::string& base = "config");

} // namespace colony::actors
