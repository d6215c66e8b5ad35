#!/bin/sh
# Fails if a C++ file of the tree is not formatted as .clang-format says
# (make format fixes it). Run by CTest as `format`.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  files=$(git ls-files --cached --others --exclude-standard '*.cpp' '*.hpp')
else
  files=$(find protocol actors runtime adapters tests -name '*.cpp' -o -name '*.hpp')
fi
bad=0
for f in $files; do
  [ -f "$f" ] || continue
  if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
    echo "not formatted: $f (run make format)"
    bad=1
  fi
done
exit $bad
