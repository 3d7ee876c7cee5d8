#!/bin/sh
# For each path: "sha256 mode owner:group" or "absent", one line each, in order.

for f in "$@"; do
  if [ -f "$f" ]; then
    printf '%s %s %s\n' "$(sha256sum -- "$f" | cut -d' ' -f1)" "$(stat -c %a -- "$f")" \
      "$(stat -c %U:%G -- "$f")"
  else
    echo absent
  fi
done
