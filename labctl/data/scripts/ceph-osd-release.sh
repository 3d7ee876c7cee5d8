#!/bin/sh
# After the OSDs' roll: `ceph osd require-osd-release RELEASE` once every OSD runs
# that release, as Ceph's upgrade notes require after a major upgrade (until then the
# cluster is HEALTH_WARN "all OSDs are running reef or later but require_osd_release <
# reef", and the release's new OSD features stay off). Looks first: an OSD map that
# already requires the release the OSDs run changes nothing; OSDs running more than one
# release (a roll not finished) is a sentence, not a guess.
# Arguments: CEPH (the ceph CLI's command line, word-split).

ceph=$1
versions=$($ceph --connect-timeout 10 osd versions) || exit 1
# {"ceph version 18.2.7 (6b0e988052ec84cf2d4a54ff9bbbc5e720b621ad) reef (stable)": 6}
releases=$(printf '%s\n' "$versions" | grep -o ') [a-z][a-z]* (' | tr -d '() ' | sort -u)
count=$(printf '%s\n' "$releases" | grep -c .)
if [ "$count" -eq 0 ]; then
  echo "no OSD reports a release: nothing to require"
  exit 0
fi
if [ "$count" -ne 1 ]; then
  echo "the OSDs run more than one release ($(printf '%s' "$releases" | tr '\n' ' ')):" \
    "require_osd_release waits until every OSD runs one: $versions" >&2
  exit 1
fi
dump=$($ceph --connect-timeout 10 osd dump -f json) || exit 1
required=$(printf '%s' "$dump" | sed -n 's/.*"require_osd_release":"\([a-z]*\)".*/\1/p')
if [ "$required" = "$releases" ]; then
  echo "require_osd_release is already $releases"
  exit 0
fi
echo "every OSD runs $releases; require_osd_release was ${required:-unset}"
$ceph --connect-timeout 10 osd require-osd-release "$releases"
