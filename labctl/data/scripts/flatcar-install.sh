#!/bin/bash
# Written by labctl: install the inventory's version from labctl's verified cache onto
# the OS disk, report, power off for labctl. Arguments: CHANNEL VERSION BASE_URL.
set -o pipefail
arg() { sed -n "s/.*\blabctl\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
report() {
  curl -fsS -m 30 --retry 5 -H 'Content-Type: application/json' \
    -H "X-Labctl-Install-Token: ${LABCTL_INSTALL_TOKEN:?}" \
    --data "{\"result\": \"$1\", \"message\": $(printf '%s' "$2" | jq -Rs .)}" "$(arg report)"
}
if ! curl -fsS -m 60 --retry 5 -o /tmp/labctl.ign "$(arg config)"; then
  report failed "fetching the Ignition config failed"; exit 1
fi
# -V and -b: this version's image and signature from labctl's boot service (its cached,
# checksum-verified copy), checked by flatcar-install against Flatcar's signing key.
if out=$(flatcar-install -d "$(arg disk)" -C "$1" -V "$2" -b "$3" -i /tmp/labctl.ign 2>&1); then
  report ok "flatcar-install wrote Flatcar $2 to $(arg disk)"
  systemctl poweroff
else
  report failed "$(printf '%s' "$out" | tail -5)"
fi
