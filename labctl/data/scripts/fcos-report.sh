#!/bin/bash
# Written by labctl: tell labctl how coreos-installer did; power off for labctl if it did.
arg() { sed -n "s/.*\blabctl\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
result=$(systemctl show -p Result --value coreos-installer.service)
if [ "$result" = success ]; then
  status=ok message="coreos-installer wrote $(arg disk)"
else
  status=failed
  why=$(journalctl -u coreos-installer.service -o cat -n 5 --no-pager)
  message="coreos-installer.service: $result: $why"
fi
body="{\"result\": \"$status\", \"message\": $(printf '%s' "$message" | jq -Rs .)}"
curl -fsS -m 30 --retry 5 -H 'Content-Type: application/json' \
  -H "X-Labctl-Install-Token: ${LABCTL_INSTALL_TOKEN:?}" --data "$body" "$(arg report)"
[ "$status" = ok ] && systemctl poweroff
