"""Debian's BGP exporter reads a real BIRD 1.6 as the monitoring layer runs it, not as root.

fohn's BIRD 1.6.8 (the bird.cfg labctl writes as calico-node's confd would) peers with
kek-core's FRR over a veth between two namespaces this test makes (``tests/peers/bgp.py``).
Its control socket's folder first gets the monitoring layer's own tmpfiles entry
(``units.bird_access``, its paths moved into the test's folder, applied by
systemd-tmpfiles as the unit's first step does), then BIRD makes the socket, root's and
0660 as BIRD 1.6 always does. Debian's prometheus-bird-exporter 1.4.1 then runs with
the unit's own arguments as the exporter's uid, no group, and must answer, through the
ACL alone, one ``bird_protocol_up`` series per BGP session the inventory implies for
fohn, named as the alert rule names it (``Mesh_...``, ``Global_...``), with the session
to kek-core Established (1) and the sessions whose peers are absent not (0).
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.inventory import require_inventory
from labctl.inventory.topology import sessions
from labctl.render import switches
from labctl.render.monitoring import units
from labctl.render.monitoring.paths import BIRD_RUN_DIR, BIRD_SOCKET
from labctl.render.monitoring.targets import BIRD_EXPORTER_PORT
from labctl.sim.render import bird
from tests.conftest import REFERENCE
from tests.peers import bgp

pytestmark = pytest.mark.integration

EXPORTER = "/usr/bin/prometheus-bird-exporter"
TMPFILES = "/usr/bin/systemd-tmpfiles"
why = bgp.available()
if why:
    pytest.skip(why, allow_module_level=True)
for needed in (EXPORTER, TMPFILES):
    if not Path(needed).exists():
        pytest.fail(f"{needed} is part of the dev environment (scripts/setup.sh installs it)")


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def run_dir() -> Iterator[Path]:
    """The socket's folder, which the exporter's uid may enter (pytest's tmp is 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="labctl-birdexp-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def scrape(url: str) -> dict[str, tuple[str, float]]:
    """bird_protocol_up of each BGP protocol: name -> (state, value)."""
    with urllib.request.urlopen(url, timeout=5) as answer:
        text = answer.read().decode()
    found = {}
    for line in text.splitlines():
        if not line.startswith("bird_protocol_up{") or 'proto="BGP"' not in line:
            continue
        labels, value = line[len("bird_protocol_up{") :].rsplit("} ", 1)
        pairs = dict(p.split("=", 1) for p in labels.split('",') if "=" in p)
        clean = {k.strip(): v.strip('"') for k, v in pairs.items()}
        found[clean["name"]] = (clean["state"], float(value))
    return found


def test_the_bgp_exporter_reads_birds_sessions_through_the_acl_as_its_own_user(
    tmp_path: Path, run_dir: Path
) -> None:
    inventory = require_inventory(REFERENCE)
    fohn = inventory.server("fohn")
    kek = next(s for s in inventory.switches if s.name == "kek-core")
    program = units.PROGRAMS[units.BIRD_EXPORTER]

    # The layer's tmpfiles entry, its /run/calico moved to the test's folder.
    real = BIRD_RUN_DIR.removeprefix("/var")
    lines = [" ".join(line).replace(real, str(run_dir)) for line in units.bird_access()]
    conf = tmp_path / "labctl-bird-exporter.conf"
    conf.write_text("\n".join(lines) + "\n")
    done = subprocess.run([TMPFILES, "--create", str(conf)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    with bgp.bgp_pair(
        run_dir,
        "kek-core",
        switches.config(inventory, kek),
        bird.config(inventory, fohn),
        "31.31.164.210/28",
        "31.31.164.220/28",
    ) as pair:
        made = os.stat(pair.bird_socket)
        assert (made.st_uid, made.st_mode & 0o777) == (0, 0o660)  # BIRD's own, as always

        # The unit's command line, its socket and listening address moved here.
        unit = units.bird_exporter(inventory, fohn, "host")
        (start,) = [
            x.split("=", 1)[1] for x in unit.text.splitlines() if x.startswith("ExecStart=")
        ]
        argv = shlex.split(start)
        assert argv[0] == EXPORTER
        port = free_tcp_port()
        argv = [
            a.replace(BIRD_SOCKET, str(pair.bird_socket))
            .replace(f"-web.listen-address=:{BIRD_EXPORTER_PORT}",
                     f"-web.listen-address=127.0.0.1:{port}")
            for a in argv
        ]  # fmt: skip
        uid = str(program.uid)
        exporter = subprocess.Popen(
            ["setpriv", "--reuid", uid, "--regid", uid, "--clear-groups", *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            want = {s.protocol: s for s in sessions(inventory, node="fohn")}
            kek_session = next(s.protocol for s in want.values() if s.peer == "kek-core")
            deadline = time.monotonic() + 30
            found: dict[str, tuple[str, float]] = {}
            while time.monotonic() < deadline:
                try:
                    found = scrape(f"http://127.0.0.1:{port}/metrics")
                except OSError:
                    found = {}
                if found.get(kek_session) == ("Established", 1.0):
                    break
                time.sleep(0.5)
            assert set(found) == set(want), found
            assert found[kek_session] == ("Established", 1.0), found
            for name, (state, value) in found.items():
                if name != kek_session:  # no peer answers: chequita, wind, astrid
                    assert state != "Established" and value == 0.0, (name, state)
            with open(f"/proc/{exporter.pid}/status") as status:
                uids = next(x for x in status if x.startswith("Uid:")).split()[1:]
            assert set(uids) == {uid}
        finally:
            exporter.terminate()
            _, err = exporter.communicate(timeout=10)
            print(err.decode()[-2000:])
