#!/bin/sh
# Fails if the layout of docs/architecture.md is broken (CTest `layout`):
#  - protocol/ and actors/ include nothing of runtime/ or adapters/;
#  - runtime/ includes no adapter (only colonyd's module list, in
#    runtime/colonyd/, names them);
#  - an adapter includes another adapter only through its public header
#    (colony/adapters/*.hpp), never a file under another adapter's src/
#    (the two store backends share src/store/backend.hpp, their interface);
#  - no test includes adapters/src (the fuzzers are white-box by design);
#  - no source file is longer than 800 lines.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bad=0
fail() {
  echo "layout: $*"
  bad=1
}
for f in $(grep -rlE '#include "colony/(runtime|adapters)/' protocol actors 2>/dev/null || true); do
  fail "$f includes runtime/ or adapters/"
done
for f in $(grep -rl '#include "colony/adapters/' runtime --include='*.cpp' --include='*.hpp' | grep -v '^runtime/colonyd/' || true); do
  fail "$f (runtime) includes an adapter"
done
for dir in adapters/src/*/; do
  name=$(basename "$dir")
  for f in $(grep -rlE '#include "\.\./(\.\./)?[a-z_]+/' "$dir" || true); do
    grep -hoE '#include "\.\./(\.\./)?[a-z_]+/[^"]*"' "$f" | while read -r inc; do
      other=$(echo "$inc" | sed -E 's|#include "\.\./(\.\./)?([a-z_]+)/.*|\2|')
      case "$name/$other" in
        http/*) ;; # routes/ and pipeline/ reach up into http itself
        *) echo "layout: $f includes $inc (another adapter's private file)"; exit 1 ;;
      esac
    done || bad=1
  done
done
for f in $(grep -rlE '#include "(http|store|auth|kafka|billing|webhooks)/|adapters/src' tests/unit tests/integration tests/bench tests/unit/CMakeLists.txt tests/integration/CMakeLists.txt tests/bench/CMakeLists.txt 2>/dev/null || true); do
  fail "$f reaches into adapters/src"
done
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  files=$(git ls-files --cached --others --exclude-standard '*.cpp' '*.hpp')
else
  files=$(find protocol actors runtime adapters tests -name '*.cpp' -o -name '*.hpp')
fi
for f in $files; do
  [ -f "$f" ] || continue
  n=$(wc -l <"$f")
  [ "$n" -le 800 ] || fail "$f has $n lines (at most 800)"
done
exit $bad
