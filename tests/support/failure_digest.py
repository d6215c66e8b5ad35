#!/usr/bin/env python3
"""After a failed `make test`: what each failing test said, in a few lines,
at the very end of the log (a CI page that shows only the head and the tail of
a long log still shows why). Reads CTest's Testing/Temporary/LastTest.log."""
import re
import sys

MAX_LINE = 300


def blocks(text):
    """(name, output, passed) per test in the log."""
    for part in re.split(r"^\d+/\d+ Test: ", text, flags=re.M)[1:]:
        name = part.split("\n", 1)[0].strip()
        m = re.search(r"^Output:\n-+\n(.*?)^<end of output>", part, flags=re.M | re.S)
        yield name, m.group(1) if m else "", "Test Passed." in part


def digest(output):
    """The unittest FAIL/ERROR headers with their exception lines; else the last lines."""
    lines = output.splitlines()
    out = []
    for i, line in enumerate(lines):
        if re.match(r"^(FAIL|ERROR): ", line):
            out.append("  " + line)
            # the exception: the lines after the traceback's frames (indented)
            j = i + 1
            while j < len(lines) and not lines[j].startswith("Traceback"):
                j += 1
            j += 1
            while j < len(lines) and lines[j].startswith("  "):
                j += 1
            for x in lines[j:j + 3]:
                if not x.strip() or re.match(r"^(=+|-+)$", x):
                    break
                out.append("    " + x[:MAX_LINE])
    if not out:  # not unittest's report: the lines that say what failed, else the last ones
        said = [x for x in lines if re.search(r"Error\b|FAILED|^not ok|Assertion|^\s+at .*test", x)]
        out = ["    " + x[:MAX_LINE] for x in (said[:8] or lines[-8:])]
    return out


def main(path):
    try:
        with open(path, errors="replace") as f:
            text = f.read()
    except OSError as e:
        print(f"failure digest: cannot read {path}: {e}")
        return
    failed = [(n, o) for n, o, ok in blocks(text) if not ok]
    if not failed:
        return
    print(f"\n==== why {len(failed)} test(s) failed (from {path}) ====")
    for name, output in failed:
        print(f"{name}:")
        for line in digest(output)[:40]:
            print(line)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Testing/Temporary/LastTest.log")
