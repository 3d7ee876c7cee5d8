#!/bin/sh
# The marker goes in before etcd first writes there, so the data is known as ours.
# A member that had data rejoins a formed cluster: the step ends only once it answers
# healthy, and the next member's restart waits for this step (a rolling restart).
# A first start has no cluster to answer yet, so it ends at once.
# Not restarted at all when the member already answers at etcd $8 and its process
# started after its files ($9...) were last written: a run killed after this restart
# (before the journal kept it) resumes without restarting the member again.

# The marker's token is read from the environment file ($9, the first of the files):
# a start-up-only line there, so a new token (a restore's) is no reason to restart.

d=$1 unit=$2 url=$3 ca=$4 cert=$5 key=$6 wait=$7 want=$8
shift 8
token=$(sed -n 's/^ETCD_INITIAL_CLUSTER_TOKEN=//p' "$1")
if [ -z "$token" ]; then
  echo "$1 names no ETCD_INITIAL_CLUSTER_TOKEN: $unit was not restarted" >&2
  exit 1
fi
ask() { curl -sf --max-time 2 --cacert "$ca" --cert "$cert" --key "$key" "$url/$1"; }
if [ -n "$want" ] && ask version | grep -qF "\"etcdserver\":\"$want\""; then
  started=$(ask metrics | awk '$1 == "process_start_time_seconds" { printf "%d", $2 }')
  written=$(stat -c %Y "$@" | sort -n | tail -n 1)
  if [ -n "$started" ] && [ -n "$written" ] && [ "$started" -gt "$written" ]; then
    echo "$unit already runs etcd $want with its current files: not restarted"
    exit 0
  fi
fi
formed=no; [ -d "$d/member" ] && formed=yes
mkdir -p "$d" && chmod 0700 "$d"
[ -f "$d/.labctl-cluster" ] || printf '%s\n' "$token" > "$d/.labctl-cluster"
systemctl restart "$unit"
[ "$formed" = yes ] || exit 0
i=0
until ask health | grep -q '"health":"true"'; do
  i=$((i + 1))
  if [ "$i" -ge "$wait" ]; then
    echo "$unit restarted, but its member did not answer healthy within $wait s;" \
      "the other members were not restarted" >&2
    exit 1
  fi
  sleep 1
done
