#!/bin/sh
# A target's survey in one round trip (labctl/drivers/ssh.py, survey): the files a plan
# writes on the node, then its waits and checks. Arguments: the number of files N, then
# N groups of four (path, wanted sha256, wanted mode in octal, wanted owner as chown
# takes it or "-" for any), then one command line per condition. Prints, one line
# each, in order: every file's "sha256 mode owner:group" or "absent"; then every
# condition's "0" (exits 0 now) or "1", or "-" for all of them when a file is not as
# wanted: a condition is only tried where the files before it already hold, so a wait
# that starts a unit never starts it on a file about to change. One sha256sum and one
# stat read every file there is (a process per file made a survey of a node's dozen
# files cost more than its round trip); "${k}" names the k-th argument, so eval only
# ever expands references to the arguments, never their text.

n=$1
path=""
want_sha=""
want_mode=""
want_owner=""
k=2
refs=""
i=0
while [ "$i" -lt "$n" ]; do
  eval "path=\${$k}"
  if [ -f "$path" ]; then
    refs="$refs \"\${$k}\""
  fi
  k=$((k + 4))
  i=$((i + 1))
done
sums=""
stats=""
if [ -n "$refs" ]; then
  sums=$(eval "sha256sum -- $refs" | cut -d' ' -f1)
  stats=$(eval "stat -c '%a %U:%G' -- $refs")
fi
nl='
'
sums="$sums$nl"
stats="$stats$nl"
same=1
k=2
i=0
while [ "$i" -lt "$n" ]; do
  eval "path=\${$k} want_sha=\${$((k + 1))} want_mode=\${$((k + 2))} want_owner=\${$((k + 3))}"
  if [ -f "$path" ]; then
    sha=${sums%%"$nl"*}
    sums=${sums#*"$nl"}
    mode_owner=${stats%%"$nl"*}
    stats=${stats#*"$nl"}
    printf '%s %s\n' "$sha" "$mode_owner"
    owner=${mode_owner#* }
    if [ "$sha" != "$want_sha" ] || [ "${mode_owner%% *}" != "$want_mode" ]; then
      same=0
    fi
    case $want_owner in
      -) ;;
      *:*) [ "$owner" = "$want_owner" ] || same=0 ;;
      *) [ "${owner%%:*}" = "$want_owner" ] || same=0 ;;
    esac
  else
    echo absent
    same=0
  fi
  k=$((k + 4))
  i=$((i + 1))
done
shift $((1 + 4 * n))
for check in "$@"; do
  if [ "$same" = 0 ]; then
    echo -
  elif sh -c "$check" >/dev/null 2>&1 </dev/null; then
    echo 0
  else
    echo 1
  fi
done
