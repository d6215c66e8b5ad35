// The one gate every JSON document passes before any parser builds anything
// from it (json.hpp: check_json). It runs nlohmann-json's SAX parser, which is
// iterative (no recursion, so no stack to exhaust) and linear in the input,
// and holds the document to the limits: nesting depth, number of values, no
// duplicate keys, well-formed UTF-8 (the lexer checks it). protobuf's JSON
// parser, which the bodies go to next, costs more than quadratic time in the
// nesting depth (8,000 levels: 3.6 s; 100,000: over ten minutes), so nothing
// deeper than max_json_depth may ever reach it.
#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "colony/protocol/json.hpp"

namespace colony::protocol {
namespace {

using njson = nlohmann::json;

class limits_sax {
public:
  explicit limits_sax(const json_limits& limits) : limits_(limits) {}

  bool null() { return value(); }
  bool boolean(bool) { return value(); }
  bool number_integer(njson::number_integer_t) { return value(); }
  bool number_unsigned(njson::number_unsigned_t) { return value(); }
  bool number_float(njson::number_float_t, const njson::string_t&) { return value(); }
  bool string(njson::string_t&) { return value(); }
  bool binary(njson::binary_t&) { return value(); }

  bool start_object(std::size_t) { return open(true); }
  bool start_array(std::size_t) { return open(false); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(njson::string_t& k) {
    auto& lvl = levels_[depth_ - 1];
    if (!lvl.keys.insert(k).second) {
      lvl.key = k;
      error_ = json_error{json_error::duplicate_key, path(), "duplicate key"};
      return false;
    }
    lvl.key = std::move(k);
    return true;
  }

  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception&) {
    // The position only: the error text of the lexer quotes the input.
    error_ = json_error{json_error::syntax,
                        {},
                        "the body is not valid JSON (at byte " + std::to_string(position > 0 ? position - 1 : 0) + ")"};
    return false;
  }

  [[nodiscard]] const json_error& error() const { return error_; }
  [[nodiscard]] bool top_is_object() const { return top_object_; }

private:
  struct level {
    bool object = false;
    std::size_t index = 0; // arrays: the next element's index
    std::string key;       // objects: the key of the current member
    std::unordered_set<std::string> keys;
  };

  bool value() {
    if (++values_ > limits_.max_values) {
      error_ = json_error{json_error::too_many_values, path(),
                          "the body has more than " + std::to_string(limits_.max_values) +
                            " values (the limit of a JSON body)"};
      return false;
    }
    if (depth_ > 0 && !levels_[depth_ - 1].object)
      ++levels_[depth_ - 1].index;
    return true;
  }

  bool open(bool object) {
    if (depth_ == 0)
      top_object_ = object;
    if (!value())
      return false;
    if (depth_ >= limits_.max_depth) {
      error_ = json_error{json_error::too_deep, path(),
                          "the body nests objects and arrays deeper than " + std::to_string(limits_.max_depth) +
                            " levels (the limit of a JSON body)"};
      return false;
    }
    if (levels_.size() <= depth_)
      levels_.emplace_back();
    auto& lvl = levels_[depth_++];
    lvl.object = object;
    lvl.index = 0;
    lvl.key.clear();
    lvl.keys.clear();
    return true;
  }

  bool close() {
    --depth_;
    return true;
  }

  /// The JSON path of the current position, e.g. attributes.tags[3]; built
  /// only for an error. Keys are cut to 64 bytes: a path never echoes a body.
  [[nodiscard]] std::string path() const {
    std::string out;
    for (std::size_t i = 0; i < depth_ && out.size() < 256; ++i) {
      const auto& lvl = levels_[i];
      if (lvl.object) {
        if (lvl.key.empty() && lvl.keys.empty())
          break;
        if (!out.empty())
          out += '.';
        out += valid_utf8(std::string_view{lvl.key}.substr(0, 64));
      } else {
        if (lvl.index == 0)
          break;
        out += '[' + std::to_string(lvl.index - 1) + ']';
      }
    }
    return out;
  }

  const json_limits& limits_;
  std::vector<level> levels_;
  std::size_t depth_ = 0;
  std::size_t values_ = 0;
  bool top_object_ = false;
  json_error error_;
};

} // namespace

std::optional<json_error> check_json(std::string_view text, bool require_object, const json_limits& limits) {
  limits_sax sax{limits};
  bool ok = njson::sax_parse(text.begin(), text.end(), &sax, njson::input_format_t::json, true, false);
  if (!ok)
    return sax.error();
  if (require_object && !sax.top_is_object())
    return json_error{json_error::not_object, {}, "the body must be a JSON object"};
  return std::nullopt;
}

} // namespace colony::protocol
