"""Fault injection: what the operator sees when things fail half-way, and that nothing is lost.

Each test breaks one thing on the simulated reference lab (real sshd, ipmi_sim,
snmpd and etcd in namespaces), asserts the sentence the operator reads, and then
that nothing was lost: files whole, the journal readable, a re-run converging.
docs/reliability.md summarises them with their figures. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from labctl.engine.journal import Journal
from tests.e2e.conftest import NODES, SECRETS, Lab, run
from tests.labctl_process import run_labctl

pytestmark = [pytest.mark.e2e, pytest.mark.faults]
PKI_DIRS = "/etc/ssl/etcd /etc/kubernetes/ssl"


def labctl(lab: Lab, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_labctl(*args, cwd=lab.workdir, env={**lab.env(), **env})


def spawn(lab: Lab, *args: str) -> subprocess.Popen[str]:
    """labctl in the background, as an operator's shell would run it."""
    environ = {**os.environ, **lab.env(), "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, "-m", "labctl", *args], cwd=lab.workdir, env=environ,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def short_boot_wait(lab: Lab, seconds: int = 5) -> None:
    """A dead node costs its boot wait: keep it short where the test makes one dead."""
    path = lab.workdir / "inventory.yaml"
    text = path.read_text()
    path.write_text(text.replace("  ssh:\n", f"  ssh:\n    boot_wait: {seconds}\n", 1))


# On a node: every file under the PKI directories, one line each: "torn PATH" when it is
# a temp file of labctl's or does not parse as what its name says, else "ok PATH".
CHECK_FILES = r"""
find DIRS -type f 2>/dev/null | while read -r f; do
  case "$f" in
    */.labctl.*) echo "torn $f"; continue ;;
    *.pub|*.trust.pem) kind="pkey -pubin" ;;
    *-key.pem|*.key) kind=pkey ;;
    *) kind=x509 ;;
  esac
  if openssl $kind -noout -in "$f" 2>/dev/null; then echo "ok $f"; else echo "torn $f"; fi
done
""".replace("DIRS", PKI_DIRS)


def assert_no_torn_files(lab: Lab) -> int:
    """No temp file of labctl's left on any node; every key and certificate parses.

    One SSH round trip per node, the nodes at once (one after another they were 2.0 s of
    each of the 20-SIGKILL test's rounds, 40 s in all); returns how many files were
    checked. The node runs openssl once per file (a few dozen), which took over SSH's
    usual 10 s bound on 2 loaded cores (the 20-SIGKILL test failed so on main and on this
    branch, 2026-12-07): the check's own bound is 60 s.
    """
    with ThreadPoolExecutor(max_workers=len(NODES)) as pool:
        answers = pool.map(lambda address: lab.ssh(address, CHECK_FILES, timeout=60),
                           NODES.values())  # fmt: skip
        found = dict(zip(NODES, answers, strict=True))
    checked = 0
    for name, done in found.items():
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        torn = [line for line in lines if not line.startswith("ok ")]
        assert torn == [], f"{name}: {torn}"
        checked += len(lines)
    return checked


def test_sigkill_at_20_points_of_a_bootstrap_then_every_rerun_converges(lab: Lab) -> None:
    journal = lab.workdir / ".labctl" / "journal.jsonl"
    first = labctl(lab, "bootstrap", "--only", "power", "--only", "pki", "-o", "json")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    # Each round has work to do: a fresh PKI (so every file differs) and a fresh journal.
    # The kills are spread over the span of the bootstrap that pushes it (the rotation
    # runs before the victim starts: counted in, the later points slept past the run).
    labctl(lab, "pki", "rotate", "--yes")
    start = time.monotonic()
    baseline = labctl(lab, "bootstrap", "--only", "pki")
    span = time.monotonic() - start
    assert baseline.returncode == 0
    checked, running = 0, 0
    for point in range(20):
        assert labctl(lab, "pki", "rotate", "--yes").returncode == 0
        victim = spawn(lab, "bootstrap", "--only", "pki")
        time.sleep(0.25 + span * point / 20)  # spread over start-up, minting and the push
        running += victim.poll() is None
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        Journal(journal.parent)  # still readable: a torn last line is skipped
        again = labctl(lab, "bootstrap", "--only", "pki", "-o", "json")
        assert again.returncode == 0, f"point {point}: " + again.stdout[-2000:] + again.stderr
        converged = labctl(lab, "bootstrap", "--only", "pki", "-o", "json")
        report = json.loads(converged.stdout)
        plans = report["layers"][0]["plans"]
        assert all(plan["nothing_to_do"] for plan in plans), f"point {point} did not converge"
        checked += assert_no_torn_files(lab)
    print(
        f"20 SIGKILLs over {span:.1f} s of bootstrap ({running} while it ran): 20 runs "
        f"survived, {checked} files checked"
    )


def test_a_node_whose_link_is_cut_fails_by_name_and_the_rerun_converges(lab: Lab) -> None:
    short_boot_wait(lab)
    assert labctl(lab, "bootstrap", "--only", "power", "--only", "pki").returncode == 0
    assert labctl(lab, "pki", "rotate", "--yes").returncode == 0  # work for the next push
    # The cable is pulled at the switch: wind's veth loses its carrier, so wind keeps
    # its addresses and routes, as a real NIC does, and gets them back with the link.
    record = json.loads((lab.state / "sim.json").read_text())
    netns, fabric = record["nodes"]["wind"]["netns"], record["plan"]["fabric"]
    node_links = run("ip", "-n", netns, "-o", "link").stdout.splitlines()
    nic = next(line for line in node_links if ": en" in line)
    peer_index = nic.split(":")[1].split("@if")[1]
    fabric_links = run("ip", "-n", fabric, "-o", "link").stdout.splitlines()
    switch_port = next(
        line.split(":")[1].strip().split("@")[0]
        for line in fabric_links
        if line.startswith(f"{peer_index}:")
    )
    assert run("ip", "-n", fabric, "link", "set", switch_port, "down").returncode == 0
    try:
        cut = labctl(lab, "bootstrap", "--only", "pki", "-o", "json")
    finally:
        assert run("ip", "-n", fabric, "link", "set", switch_port, "up").returncode == 0
    assert cut.returncode == 1
    steps = [s for plan in json.loads(cut.stdout)["layers"][0]["plans"] for s in plan["steps"]]
    failed = [s for s in steps if s["outcome"] == "failed"]
    assert {s["target"] for s in failed} == {"wind"}, failed
    assert "wind" in failed[0]["error"]
    assert all(s["outcome"] != "failed" for s in steps if s["target"] != "wind")
    again = labctl(lab, "bootstrap", "--only", "pki")
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr
    assert_no_torn_files(lab)


def test_a_bmc_killed_during_power_cycle_all_fails_its_row_within_its_bound(lab: Lab) -> None:
    pids = json.loads((lab.state / "sim.json").read_text())["pids"]
    cycle = spawn(
        lab, "power", "cycle", "--all", "--yes", "--force", "--timeout", "1", "-o", "json"
    )
    time.sleep(0.6)  # the command is past start-up and talking to the BMCs
    daemon = lab.state / "bmcs" / "wind" / "daemon.pid"
    pid = int(daemon.read_text()) if daemon.exists() else pids["bmc:wind"]
    os.kill(pid, signal.SIGKILL)
    start = time.monotonic()
    out, err = cycle.communicate(timeout=120)
    assert cycle.returncode == 1 and out, out + err
    rows = {row["server"]: row for row in json.loads(out)["targets"]}
    assert rows["wind"]["error"], rows["wind"]
    assert rows["fohn"]["ok"] and rows["chequita"]["ok"], rows
    bound = 1 * 3 + 1  # --timeout 1: three tries and a second of slack per call
    assert rows["wind"]["seconds"] < bound * 2 + 5, rows["wind"]  # a read, then one more
    print(f"dead BMC: its row failed after {rows['wind']['seconds']:.1f} s; "
          f"the command ended {time.monotonic() - start:.1f} s after the kill")  # fmt: skip
    repaired = lab.labctl("sim", "up")  # wind's BMC back, for the tests after this one
    assert repaired.returncode == 0 and "the BMC of wind" in repaired.stdout, repaired.stdout


def test_a_full_file_system_is_named_and_the_old_file_is_kept(lab: Lab) -> None:
    assert labctl(lab, "bootstrap", "--only", "power", "--only", "pki").returncode == 0
    target = "/etc/kubernetes/ssl"
    before = lab.ssh(NODES["wind"], f"sha256sum {target}/kube-proxy.pem").stdout.split()[0]
    # A tiny tmpfs over the directory, holding the current files and filled up.
    fill = (
        f"mkdir -p /tmp/keep && cp -a {target}/. /tmp/keep/ && "
        f"mount -t tmpfs -o size=64k tmpfs {target} && cp -a /tmp/keep/. {target}/ && "
        f"(dd if=/dev/zero of={target}/filler bs=4k 2>/dev/null || true)"
    )
    assert lab.ssh(NODES["wind"], fill).returncode == 0
    try:
        assert labctl(lab, "pki", "rotate", "kube-proxy", "--yes").returncode == 0
        full = labctl(lab, "bootstrap", "--only", "pki", "-o", "json")
        assert full.returncode == 1
        steps = [s for plan in json.loads(full.stdout)["layers"][0]["plans"] for s in plan["steps"]]
        failed = [s for s in steps if s["outcome"] == "failed"]
        assert [s["target"] for s in failed] == ["wind"], failed
        error = failed[0]["error"]
        assert f"{target}/kube-proxy" in error and "No space left on device" in error, error
        after = lab.ssh(NODES["wind"], f"sha256sum {target}/kube-proxy.pem").stdout.split()[0]
        assert after == before  # the old file is whole, not truncated
        leftovers = lab.ssh(NODES["wind"], f"ls -a {target} | grep '^.labctl' || true").stdout
        assert leftovers.strip() == ""
    finally:
        lab.ssh(NODES["wind"], f"umount {target}")
    assert labctl(lab, "bootstrap", "--only", "pki").returncode == 0


def test_a_rekeyed_node_is_refused_and_told_how_to_accept_it(lab: Lab) -> None:
    assert labctl(lab, "bootstrap", "--only", "power", "--only", "pki").returncode == 0
    node_dir = next(p for p in (lab.state / "nodes").iterdir() if p.name == "wind")
    keys = {s: (node_dir / f"ssh_host_ed25519_key{s}").read_bytes() for s in ("", ".pub")}
    try:
        refused_with_a_new_host_key(lab, node_dir)
    finally:  # wind gets its own key back (a shared lab goes on), and answers again
        for suffix, key in keys.items():
            (node_dir / f"ssh_host_ed25519_key{suffix}").write_bytes(key)
        assert labctl(lab, "power", "cycle", "wind").returncode == 0
    deadline = time.monotonic() + 15
    while lab.ssh(NODES["wind"], "true").returncode != 0:
        assert time.monotonic() < deadline, "wind did not come back with its own host key"
        time.sleep(0.3)


def refused_with_a_new_host_key(lab: Lab, node_dir: Path) -> None:
    for suffix in ("", ".pub"):
        (node_dir / f"ssh_host_ed25519_key{suffix}").unlink()
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(node_dir / "ssh_host_ed25519_key"))
    assert labctl(lab, "power", "cycle", "wind").returncode == 0  # sshd starts with the new key
    assert labctl(lab, "pki", "rotate", "kube-proxy", "--yes").returncode == 0
    before = lab.ssh(NODES["wind"], "true")
    assert before.returncode != 0  # plain ssh refuses too (strict known_hosts)
    refused = labctl(lab, "bootstrap", "--only", "pki", "-o", "json")
    assert refused.returncode == 1
    steps = [s for plan in json.loads(refused.stdout)["layers"][0]["plans"] for s in plan["steps"]]
    wind = [s for s in steps if s["target"] == "wind"]
    assert wind[0]["outcome"] == "failed" and all(s["outcome"] == "blocked" for s in wind[1:])
    error = wind[0]["error"]
    assert "host key does not match" in error and "ssh-keygen -R 31.31.164.222" in error, error
    assert wind[0]["attempts"] == 1  # a refusal is not retried, and nothing was sent


def test_a_pdu_with_the_wrong_key_is_an_authentication_error_without_a_storm(lab: Lab) -> None:
    start = time.monotonic()
    done = labctl(lab, "power", "status", "fohn", "--via", "pdu", LABCTL_PDU_AUTH_KEY="wrong-key-1")
    took = time.monotonic() - start
    assert done.returncode == 1
    said = (done.stdout + done.stderr).lower()
    assert "authentication" in said or "wrong key" in said or "wrong digest" in said, said
    assert took < 20, f"{took:.1f} s: a refusal should not be retried into a storm"
    print(f"wrong PDU key: refused in {took:.1f} s")


def test_a_second_bootstrap_refuses_while_the_first_finishes(lab: Lab) -> None:
    # Work for the first run (a fresh PKI to push), as on a lab never bootstrapped: on
    # the shared lab a converged run could be over before the second one starts.
    assert labctl(lab, "pki", "rotate", "--yes").returncode == 0
    first = spawn(lab, "bootstrap", "--only", "power", "--only", "pki")
    time.sleep(1.0)  # past start-up: it holds the lock
    second = labctl(lab, "bootstrap", "--only", "pki")
    out, err = first.communicate(timeout=300)
    assert second.returncode == 1
    assert "another labctl run (pid" in second.stderr, second.stderr
    assert first.returncode == 0, out[-2000:] + err[-2000:]


def test_no_secret_is_written_by_labctl_after_a_full_run(lab: Lab) -> None:
    environ = lab.env()
    # Every layer up to etcd (the ceph layer needs the host's binaries and settings for
    # one machine on the simulated lab: tests/e2e/test_ceph_lab.py).
    done = labctl(lab, "bootstrap", "--only", "power", "--only", "pki", "--only", "etcd")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    shown = [labctl(lab, *args) for args in (
        ("power", "status", "--all", "-o", "json"), ("pki", "list"), ("etcd", "status"),
        ("etcd", "snapshot"), ("plan",),
    )]  # fmt: skip
    secrets = [environ[k] for k in (*SECRETS, "LABCTL_CA_PASSPHRASE")]
    # Everything labctl wrote here, except the simulator's own daemon configs (.labctl/sim:
    # ipmi_sim and snmpd must be told their passwords; a real lab has no such directory).
    written = [
        p for p in lab.workdir.rglob("*")
        if p.is_file() and lab.state not in p.parents and p.name != "inventory.yaml"
    ]  # fmt: skip
    searched = 0
    for path in written:
        content = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in content, f"{path} holds a secret"
        searched += 1
    for output in [done, *shown]:
        for secret in secrets:
            assert secret not in output.stdout + output.stderr
    print(f"{len(secrets)} secrets searched for in {searched} files and {len(shown) + 1} outputs")


def test_a_half_broken_lab_is_named_by_status_and_repaired_by_up(lab: Lab) -> None:
    record = json.loads((lab.state / "sim.json").read_text())
    host_link = record["plan"]["host_link"]
    # chequita's sshd dies, wind's BMC dies, and the host loses its link into the lab.
    assert lab.ssh(NODES["chequita"], "kill $(cat /run/sshd.pid)").returncode in (0, 255)
    daemon = lab.state / "bmcs" / "wind" / "daemon.pid"
    bmc = int(daemon.read_text()) if daemon.exists() else record["pids"]["bmc:wind"]
    os.kill(bmc, signal.SIGKILL)
    assert run("ip", "link", "del", host_link).returncode == 0

    broken = lab.labctl("sim", "status", "-o", "json")
    assert broken.returncode == 1
    problems = json.loads(broken.stdout)["problems"]
    assert f"the host link {host_link} is gone: the lab is cut off from here" in problems

    repaired = lab.labctl("sim", "up")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    said = repaired.stdout
    assert f"the host link {host_link}" in said and "the BMC of wind" in said, said
    # Its sshd is the node's main process here, so the node went with it: either way
    # up brings chequita back, and says so.
    assert "chequita (its node was not running)" in said or "chequita (its sshd" in said, said

    healthy = lab.labctl("sim", "status", "-o", "json")
    assert healthy.returncode == 0, healthy.stdout
    assert all(node["bmc_answers"] for node in json.loads(healthy.stdout)["nodes"])
    assert all(lab.ssh(address, "true").returncode == 0 for address in NODES.values())
    assert labctl(lab, "power", "status", "--all").returncode == 0
    again = lab.labctl("sim", "up")
    assert "already up; nothing changed" in again.stdout
