#!/bin/sh
# Which etcd cluster token this member's node already holds, for a run that has none
# recorded (`labctl/etcd/token.py`): whether the data directory holds etcd data, the
# token its labctl marker names, and the token its environment file names. Reads only.
# Arguments: DATA_DIR ENV_FILE. Prints three lines: `data yes|no`, `marker TOKEN`,
# `env TOKEN` (TOKEN empty when there is none).

d=$1 env=$2
if [ -d "$d/member" ]; then echo "data yes"; else echo "data no"; fi
marker=$(head -n 1 "$d/.labctl-cluster" 2>/dev/null)
echo "marker $marker"
token=$(sed -n 's/^ETCD_INITIAL_CLUSTER_TOKEN=//p' "$env" 2>/dev/null | head -n 1 | tr -d "\"'")
echo "env $token"
