// Tenant plugin code in a Lua 5.4 sandbox (docs/plugins.md): one Lua state
// per sandbox, and nothing reachable from it but a safe subset of the
// standard library and the host functions the embedder registers.
//
// The limits hold per call (a hook's run, from its start to its last
// resume): VM instructions (a count hook that keeps firing once the budget is
// spent, so a pcall cannot swallow it), wall-clock time on the monotonic
// clock (checked by the same hook), the state's memory (its allocator refuses
// what goes past the cap, also inside one library call such as string.rep or
// table.concat), the size of what a hook returns, and the number of host
// calls. A state whose call broke a limit may be inconsistent: the embedder
// makes a new sandbox from the same source (reset()).
//
// string.find, match, gmatch and gsub are a metered matcher's: its steps
// count against the same instruction budget and deadline (the library's C
// matcher runs where no count hook fires).
//
// Values cross as JSON text: a hook's arguments are decoded into Lua tables,
// its results encoded back (at most 64 levels deep; a table is an array when
// its keys are exactly 1..n, an object when they are all strings).
//
// Host calls: a host function registered as asynchronous yields the hook's
// coroutine; call() then answers `pending` with the request, and the embedder
// answers it with resume() when it has the reply (the actor keeps serving its
// mailbox meanwhile). Not thread-safe: one actor owns a sandbox.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace colony::adapters::lua {

struct limits {
  std::uint64_t instructions = 10'000'000; // VM instructions per call
  std::chrono::milliseconds wall{50};      // per call, from its start to its last resume
  std::size_t memory = 16u << 20;          // bytes the state may hold
  std::size_t output = 1u << 20;           // bytes of a call's results, as JSON
  int host_calls = 100;                    // colony.* calls per call
};

enum class fault : std::uint8_t {
  none,
  syntax,       // the source does not compile (line in the message)
  load,         // the chunk failed when run, or did not return a table of functions
  no_such_hook, // the source has no function of that name
  error,        // the hook raised an error (Lua's message, with the line)
  instructions, // the instruction budget is spent
  time,         // the wall-clock budget is spent
  memory,       // the state's memory cap was hit
  output,       // the results are larger than limits::output, or cannot be JSON
  host_calls,   // more host calls than limits::host_calls, or a misused one
};

[[nodiscard]] std::string_view to_string(fault f);

/// A host function: its arguments and its answer are JSON text (an array of
/// the Lua arguments; the values it returns to Lua, as one JSON value, or an
/// error message to raise in the plugin).
struct host_reply {
  std::string json = "null";
  std::optional<std::string> error;
};
using host_fn = std::function<host_reply(const std::string& args_json)>;

struct host_function {
  std::string table; // "" for colony.<name>, "kv" for colony.kv.<name>
  std::string name;
  host_fn fn;                // synchronous (nullptr when asynchronous)
  bool asynchronous = false; // yields: the embedder answers through resume()
};

/// What a call came to.
struct outcome {
  enum class state : std::uint8_t { done, pending, failed } st = state::done;
  std::string results = "[]";     // done: the hook's return values, a JSON array
  std::string request;            // pending: {"fn": "kv.get", "args": [...]}
  fault f = fault::none;          // failed: which limit or error
  std::string message;            // failed: the limit named, or Lua's message
  std::uint64_t instructions = 0; // spent so far (in steps of the hook's period)
  bool needs_reset = false;       // the state may be inconsistent: reset() before the next call
};

class sandbox {
public:
  /// Compiles `source` in text mode (never a binary chunk) and runs it; it
  /// must return a table of functions (the hooks). nullptr with `*error` set
  /// (fault::syntax or fault::load, the message naming the line) otherwise.
  static std::unique_ptr<sandbox> create(const std::string& chunk_name, const std::string& source, const limits& lim,
                                         std::vector<host_function> host, outcome* error);
  ~sandbox();
  sandbox(const sandbox&) = delete;
  sandbox& operator=(const sandbox&) = delete;

  [[nodiscard]] const std::vector<std::string>& hooks() const;
  [[nodiscard]] bool has(std::string_view hook) const;
  /// Starts `hook` with `args_json` (a JSON array of its arguments).
  outcome call(std::string_view hook, const std::string& args_json);
  /// Answers the pending host request (the value, or an error to raise).
  outcome resume(const host_reply& reply);
  /// A fresh state from the same source (after a call that needs it).
  bool reset(outcome* error);
  /// Bytes the state holds now.
  [[nodiscard]] std::size_t memory() const;

  struct impl;

private:
  explicit sandbox(std::unique_ptr<impl> p);
  std::unique_ptr<impl> p_;
};

} // namespace colony::adapters::lua
