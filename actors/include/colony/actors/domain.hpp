// Vocabulary shared by the domain models: outcomes over protocol's error codes and failures.
//
// Plain C++ values: no I/O, no actor types. Failures are mapped to HTTP
// problems at the edge (adapters/http), never here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "colony/protocol/problem.hpp"

namespace colony::actors {

// The error vocabulary lives in protocol (problem.hpp): the HTTP API, the
// Kafka results and replies forwarded between nodes render it the same way.
using protocol::errc;
using protocol::fail;
using protocol::failure;

/// The result of a domain operation: a value or a failure.
template <class T>
class [[nodiscard]] outcome {
public:
  outcome(T value) : v_(std::move(value)) {}
  outcome(failure f) : v_(std::move(f)) {}
  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  failure& error() { return std::get<1>(v_); }
  const failure& error() const { return std::get<1>(v_); }

private:
  std::variant<T, failure> v_;
};

} // namespace colony::actors
