#!/bin/sh
# Writes stdin to a temp file beside the target; when the target already has that
# content, mode and owner, drops it and says "unchanged", else syncs, sets mode and
# owner, renames it over the target and says "changed". One round trip per file.

set -eu
target=$1 mode=$2 owner=$3
dir=$(dirname -- "$target")
mkdir -p -- "$dir"
tmp=$(mktemp -- "$dir/.labctl.XXXXXXXX")
trap 'rm -f -- "$tmp"' EXIT HUP INT TERM PIPE
cat > "$tmp"
if [ -f "$target" ] && cmp -s -- "$tmp" "$target" \
    && [ "$(stat -c %a -- "$target")" = "$mode" ]; then
  current=$(stat -c %U:%G -- "$target")
  case "$owner" in
    "") same=1 ;;
    *:*) [ "$current" = "$owner" ] && same=1 || same=0 ;;
    *) [ "${current%%:*}" = "$owner" ] && same=1 || same=0 ;;
  esac
  if [ "$same" = 1 ]; then echo unchanged; exit 0; fi
fi
chmod "$mode" -- "$tmp"
if [ -n "$owner" ]; then chown -- "$owner" "$tmp"; fi
sync -- "$tmp"
mv -f -- "$tmp" "$target"
trap - EXIT HUP INT TERM PIPE
sync -- "$dir" 2>/dev/null || true
echo changed
