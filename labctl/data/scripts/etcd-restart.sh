#!/bin/sh
# The marker goes in before etcd first writes there, so the data is known as ours.
# A member that had data rejoins a formed cluster: the step ends only once it answers
# healthy, and the next member's restart waits for this step (a rolling restart).
# A first start has no cluster to answer yet, so it ends at once.

d=$1 token=$2 unit=$3 url=$4 ca=$5 cert=$6 key=$7 wait=$8
formed=no; [ -d "$d/member" ] && formed=yes
mkdir -p "$d" && chmod 0700 "$d"
[ -f "$d/.labctl-cluster" ] || printf '%s\n' "$token" > "$d/.labctl-cluster"
systemctl restart "$unit"
[ "$formed" = yes ] || exit 0
i=0
until curl -sf --max-time 2 --cacert "$ca" --cert "$cert" --key "$key" "$url/health" \
    | grep -q '"health":"true"'; do
  i=$((i + 1))
  if [ "$i" -ge "$wait" ]; then
    echo "$unit restarted, but its member did not answer healthy within $wait s;" \
      "the other members were not restarted" >&2
    exit 1
  fi
  sleep 1
done
