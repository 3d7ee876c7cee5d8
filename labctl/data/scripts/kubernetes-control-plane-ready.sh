#!/bin/sh
# A control-plane node is back when its API server answers /readyz (anonymous access to
# it is allowed) and, with static pods, serves the certificate on the node's disk: the
# kubelet replaces the pod some seconds after its manifest changes (a rotation changes
# the manifest's annotation), and until then the old one would still answer.
# "$1" address, "$2" port, "$3" the certificate file, or "-" not to compare.

if [ "$3" != - ]; then
  want=$(openssl x509 -noout -fingerprint -sha256 -in "$3") || exit 1
  have=$(openssl s_client -connect "$1:$2" </dev/null 2>/dev/null \
    | openssl x509 -noout -fingerprint -sha256 2>/dev/null)
  [ "$have" = "$want" ] || exit 1
fi
printf 'GET /readyz HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$1" \
  | timeout 10 openssl s_client -quiet -connect "$1:$2" 2>/dev/null | tr -d '\r' | grep -qx ok
