#!/usr/bin/env python3
"""The settings table of docs/OPERATIONS.md is build/settings-doc's markdown
(the settings table of src/server/config.c), between the markers below.

  scripts/settings_table.py SETTINGS_DOC DOC --check   exit 1 if it differs
  scripts/settings_table.py SETTINGS_DOC DOC --write   rewrite it in place
"""
import subprocess
import sys

BEGIN = "<!-- settings: made by `make docs-settings`; do not edit -->\n"
END = "<!-- settings: end -->\n"


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in ("--check", "--write"):
        print(__doc__, file=sys.stderr)
        return 2
    tool, doc, mode = sys.argv[1:]
    table = subprocess.run([tool, "markdown"], check=True, capture_output=True,
                           text=True).stdout
    text = open(doc, encoding="utf-8").read()
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        print(f"{doc}: needs one line {BEGIN.strip()} and one {END.strip()}",
              file=sys.stderr)
        return 1
    head, rest = text.split(BEGIN)
    old, tail = rest.split(END)
    if old == table:
        return 0
    if mode == "--check":
        print(f"{doc}: the settings table differs from `{tool} markdown`; "
              "run `make docs-settings`", file=sys.stderr)
        return 1
    with open(doc, "w", encoding="utf-8") as f:
        f.write(head + BEGIN + table + END + tail)
    print(f"wrote the settings table of {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
