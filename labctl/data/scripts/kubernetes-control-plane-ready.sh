#!/bin/sh
# A control-plane node is back when its API server answers /readyz (anonymous access to
# it is allowed) and, with static pods, serves the certificate on the node's disk: the
# kubelet replaces the pod some seconds after its manifest changes (a rotation changes
# the manifest's annotation), and until then the old one would still answer.
# "$1" address, "$2" port, "$3" the certificate file, or "-" not to compare, "$4" the
# unit that runs the API server (the kubelet, or the API server's own unit).
# Each failure says why on stderr: a wait that runs out names its last reason, so a
# kubelet that exited at start reads as that, not as five minutes of "not ready".

if [ -n "$4" ] && ! systemctl is-active -q "$4"; then
  echo "$4 is not running (journalctl -u $4)" >&2
  exit 1
fi
if [ "$3" != - ]; then
  want=$(openssl x509 -noout -fingerprint -sha256 -in "$3") || exit 1
  have=$(openssl s_client -connect "$1:$2" </dev/null 2>/dev/null \
    | openssl x509 -noout -fingerprint -sha256 2>/dev/null)
  if [ -z "$have" ]; then
    echo "nothing serves TLS on $1:$2 yet" >&2
    exit 1
  fi
  if [ "$have" != "$want" ]; then
    echo "$1:$2 still serves another certificate than $3" >&2
    exit 1
  fi
fi
printf 'GET /readyz HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$1" \
  | timeout 10 openssl s_client -quiet -connect "$1:$2" 2>/dev/null | tr -d '\r' | grep -qx ok \
  || { echo "https://$1:$2/readyz does not answer ok yet" >&2; exit 1; }
