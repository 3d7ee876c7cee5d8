#!/bin/sh
# Prints "sha256 mode owner:group" of a file, or "absent".

if [ -f "$1" ]; then
  printf '%s %s %s\n' "$(sha256sum -- "$1" | cut -d' ' -f1)" "$(stat -c %a -- "$1")" \
    "$(stat -c %U:%G -- "$1")"
else
  echo absent
fi
