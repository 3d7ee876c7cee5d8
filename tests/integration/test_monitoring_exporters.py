"""The SNMP exporter Debian ships reads what labctl's snmp.yml tells it to, from a real agent.

net-snmp's snmpd on loopback, with the SNMPv3 user astrid's inventory entry names (its
keys resolved from test values), serves BGP4-MIB's bgpPeerState rows for the sessions
the reference lab implies; prometheus-snmp-exporter 0.21 runs with the snmp.yml the
monitoring layer writes (``monitoring/profiles.py``) and is asked for astrid. The
exporter must answer each session's state under its peer address, and still be
running after: an index type it does not know (``IpAddr``) passes its config check
but panics at the first scrape, which only a scrape shows.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from labctl.inventory import require_inventory
from labctl.inventory.model import SecretRef
from labctl.monitoring.profiles import snmp_yml
from tests.conftest import REFERENCE
from tests.peers.ports import free_udp_port

pytestmark = pytest.mark.integration

SNMPD, EXPORTER = "/usr/sbin/snmpd", "/usr/bin/prometheus-snmp-exporter"
missing = [p for p in (SNMPD, EXPORTER) if not Path(p).exists()]
if missing:
    pytest.skip(f"not installed: {', '.join(missing)} (scripts/setup.sh)", allow_module_level=True)

VALUES = {
    "LABCTL_SWITCH_SNMP_AUTH_KEY": "astrid-auth-it",
    "LABCTL_SWITCH_SNMP_PRIV_KEY": "astrid-priv-it",
    "LABCTL_PDU_AUTH_KEY": "pdu-auth-it",
    "LABCTL_PDU_PRIV_KEY": "pdu-priv-it",
}
SESSIONS = {"31.31.164.220": 6, "31.31.164.221": 6, "31.31.164.222": 1}
BGP_PEER_STATE = ".1.3.6.1.2.1.15.3.1.2"


def resolve(ref: SecretRef) -> str:
    assert ref.env is not None
    return VALUES[ref.env]


def _wait_http(url: str) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_the_exporter_reads_bgp_sessions_by_peer_address_and_survives(tmp_path: Path) -> None:
    inv = require_inventory(REFERENCE)
    astrid = next(s for s in inv.switches if s.name == "astrid")
    assert astrid.snmp is not None and astrid.snmp.username is not None
    snmp_port, http_port = free_udp_port(), free_udp_port()
    conf = tmp_path / "snmpd.conf"
    conf.write_text(
        "\n".join(
            [
                f"agentAddress udp:127.0.0.1:{snmp_port}",
                f"createUser {astrid.snmp.username} {astrid.snmp.auth_protocol.upper()} "
                f'"{VALUES["LABCTL_SWITCH_SNMP_AUTH_KEY"]}" {astrid.snmp.priv_protocol.upper()} '
                f'"{VALUES["LABCTL_SWITCH_SNMP_PRIV_KEY"]}"',
                f"rouser {astrid.snmp.username} priv",
                *(
                    f"override {BGP_PEER_STATE}.{peer} integer {state}"
                    for peer, state in SESSIONS.items()
                ),
                "",
            ]
        )
    )
    (tmp_path / "snmp.yml").write_text(snmp_yml(inv, resolve))
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(tmp_path / "persist")}
    agent = subprocess.Popen(
        [SNMPD, "-f", "-Lf", str(tmp_path / "snmpd.log"), "-C", "-c", str(conf)], env=env
    )
    exporter = subprocess.Popen(
        [EXPORTER, f"--config.file={tmp_path / 'snmp.yml'}",
         f"--web.listen-address=127.0.0.1:{http_port}"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "exporter.log").open("w"),
    )  # fmt: skip
    try:
        _wait_http(f"http://127.0.0.1:{http_port}/metrics")
        url = f"http://127.0.0.1:{http_port}/snmp?module=astrid&target=127.0.0.1:{snmp_port}"
        deadline = time.monotonic() + 10
        while True:  # snmpd may take a moment to answer its first request
            try:
                with urllib.request.urlopen(url, timeout=10) as answer:
                    text = answer.read().decode()
            except urllib.error.HTTPError as error:  # 500: the exporter's walk timed out
                if time.monotonic() > deadline:
                    raise
                text = error.read().decode()
            if "bgp_peer_state{" in text or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        for peer, state in SESSIONS.items():
            assert f'bgp_peer_state{{peer="{peer}"}} {state}' in text, text
        assert exporter.poll() is None, (tmp_path / "exporter.log").read_text()
    finally:
        for process in (exporter, agent):
            process.terminate()
            process.wait(timeout=10)
    shutil.rmtree(tmp_path / "persist", ignore_errors=True)
