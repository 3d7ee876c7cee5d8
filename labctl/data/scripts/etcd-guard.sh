#!/bin/sh
# A data directory with etcd data is this cluster's only when it holds our marker
# with our token; anything else is refused and left as it is. Reads only.

d=$1 token=$2
[ -d "$d/member" ] || exit 0
have=$(cat "$d/.labctl-cluster" 2>/dev/null || echo "no labctl marker")
[ "$have" = "$token" ] && exit 0
echo "$d holds etcd data of another cluster ($have, not $token);" \
  "labctl never wipes it: move it away by hand to let this member join" >&2
exit 3
