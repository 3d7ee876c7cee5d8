"""The second lab end to end: Fedora CoreOS nodes, an APC PDU, etcd and Ceph under podman.

One lab for the whole module (tests/fixtures/second-lab.yaml: four servers, one FRR
switch, an APC Switched Rack PDU 2), up once and taken down after the last test, so
its minutes are paid once (issue 23's "a second lab bootstraps end to end"). In order:

1. ``bootstrap`` through every layer, then each layer healthy as its own status
   command reads it: Nodes Ready, BGP sessions Established on the switch and the
   nodes, ``ceph -s`` HEALTH_OK with one OSD per host, the PDU answering over the APC
   rPDU2 profile, Prometheus scraping each Ceph manager (every one up, Ceph's metrics
   from the active one only), etcd and Ceph running as the containers their units name.
2. A Ceph image change (a mirror's name for the same release, as an air-gapped lab
   does) with a ceph.conf change in the same edit (one ``ceph.config`` option) rolls
   the daemons in Ceph's order under a probe reading quorum, the OSDs up and an RBD
   image every second: mons, each waited for back in quorum, then managers, then OSDs
   host by host with ``ok-to-stop``, ``noout`` and a wait for every PG; interrupted, a
   second run restarts only what is not yet on the image; every monitor and OSD then
   answers the option's new value. (This was the ceph lab's ceph.conf roll, folded in
   here: that lab no longer rolls.)
Kubernetes runs at 1.35.4 here, with bob a second control-plane node (the lab's
inventory is the fixture with those two changes), so that, last:

4. a rolling Kubernetes upgrade to 1.36.3 runs under a probe that reads, every second,
   the Nodes from each API server, a key from etcd and an RBD image (issue 24's "Tests
   and figures"): no read fails, never both API servers down at once, never more than
   one host's OSD down, every kubelet at 1.36.3 afterwards. This lab has Ceph and was up
   already; before, the upgrade had a lab of its own without Ceph, probed through the
   API only.

3. ``labctl reset`` of one server takes its OSD out, waits for ``safe-to-destroy``,
   purges it and removes its monitor; ``ceph -s`` is HEALTH_OK on the other three
   hosts; ``bootstrap`` powers it on, waits for its OS to boot (the reset kept it: no
   install, no boot assets needed) and makes its etcd member, OSD and monitor again.

5. ``labctl reset --all`` after every layer leaves nothing on any node, and
   ``bootstrap`` builds every layer again from nothing.
6. Last, on that new cluster: a Ceph version change, Pacific 16.2.15 to Reef 18.2.7
   (the image made by ``sim up`` from Debian 13's packages), rolled as the image change
   was, then the OSD release required; every daemon at 18.2.7, HEALTH_OK.
"""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import os
import re
import shlex
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from labctl.drivers.etcd import EtcdClient, EtcdEndpoint, EtcdTls
from labctl.errors import LabctlError
from labctl.etcd.token import TokenRecord
from labctl.inventory import require_inventory
from labctl.kubernetes import upgrade
from labctl.monitoring.status import prometheus_url
from labctl.render.monitoring.targets import targets as implied_targets
from tests.conftest import FIXTURES
from tests.e2e.conftest import Lab, simulated_lab
from tests.labctl_process import run_labctl

pytestmark = pytest.mark.e2e

SECOND_LAB = FIXTURES / "second-lab.yaml"
NODES = {"ada": "10.30.0.11", "bob": "10.30.0.12", "cyd": "10.30.0.13", "dot": "10.30.0.14"}
IMAGE = "quay.io/ceph/ceph:v16.2.15"
MIRROR = "registry.lab.example/ceph/ceph:v16.2.15"
TIMES: dict[str, float] = {}
KUBE_OLD, KUBE_NEW = "1.35.4", "1.36.3"
PLANES = ("ada", "bob")


def inventory_at(version: str) -> str:
    """The fixture with bob a second control-plane node and Kubernetes at ``version``."""
    text = SECOND_LAB.read_text()
    text = text.replace(
        "    roles: [etcd, worker, ceph-mon, ceph-osd]\n",
        "    roles: [etcd, control-plane, worker, ceph-mon, ceph-osd]\n",
        1,  # bob's line, before cyd's
    )
    return text.replace("  kubernetes:\n", f"  kubernetes:\n    version: {version}\n", 1)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    started = time.monotonic()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LABCTL_SIM_DISK_SIZE", "3G")
        workdir = tmp_path_factory.mktemp("second-lab")
        with simulated_lab(workdir, inventory_at(KUBE_OLD)) as the_lab:
            yield the_lab
    print(f"second lab, whole module: {time.monotonic() - started:.1f} s; {TIMES}")


def labctl(lab: Lab, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_labctl(*args, cwd=lab.workdir, env=lab.env(), timeout=timeout)


def on(lab: Lab, node: str, command: str, timeout: float = 60) -> str:
    # 3 s to log in: these run while Ceph's daemons load the cores
    done = lab.ssh(NODES[node], command, timeout=timeout, connect_timeout=3)
    assert done.returncode == 0, f"{node}: {command}: {done.stdout}{done.stderr}"
    return done.stdout


def failed_steps(stdout: str) -> str:
    """A failed run's report cut to its failed steps (the whole is far longer than a
    failure message can show), or its tail when it is no report."""
    try:
        report = json.loads(stdout)
    except ValueError:
        return stdout[-4000:]
    failed = [
        {"plan": plan["layer"], **step}
        for layer in report.get("layers", [])
        for plan in layer.get("plans", [])
        for step in plan.get("steps", [])
        if step.get("error") or step.get("outcome") == "failed"
    ]
    return json.dumps(failed, indent=1)[-6000:] + "\n"


def bootstrap(lab: Lab, *args: str) -> dict[str, Any]:
    start = time.monotonic()
    done = labctl(lab, "bootstrap", "-o", "json", *args, timeout=900)
    assert done.returncode == 0, failed_steps(done.stdout) + done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout)
    report["took"] = time.monotonic() - start
    return report


def steps_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Every step of a bootstrap's JSON report, layer by layer, plan by plan."""
    return [s for layer in report["layers"] for plan in layer["plans"] for s in plan["steps"]]


def ceph_status(lab: Lab) -> dict[str, Any]:
    done = labctl(lab, "ceph", "status", "-o", "json", timeout=60)
    assert done.stdout, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def wait_healthy(lab: Lab, deadline: float = 300) -> dict[str, Any]:
    end = time.monotonic() + deadline
    while (report := ceph_status(lab))["health"] != "HEALTH_OK":
        assert time.monotonic() < end, json.dumps(report, indent=2)
        time.sleep(2)
    return report


def containers(lab: Lab, node: str) -> dict[str, str]:
    """The node's running containers (podman, as Fedora CoreOS runs them): name -> image."""
    out = on(lab, node, "podman ps --format '{{.Names}} {{.Image}}'")
    return dict(line.split() for line in out.splitlines())


def applied_with_every_node(lab: Lab, report: dict[str, Any], *layers: str) -> None:
    """The bootstrap ``report`` applied ``layers``, and the API is ready with every Node."""
    statuses = {x["layer"]: x["status"] for x in report["layers"]}
    applied = {name for name, status in statuses.items() if status == "applied"}
    assert set(layers) <= applied, statuses
    kubernetes = labctl(lab, "kubernetes", "status", "-o", "json")
    found = json.loads(kubernetes.stdout)
    assert kubernetes.returncode == 0, kubernetes.stdout + kubernetes.stderr
    assert found["api"]["ready"] and found["missing_nodes"] == [], found


def test_the_second_lab_bootstraps_through_every_layer(lab: Lab) -> None:
    report = bootstrap(lab)
    TIMES["bootstrap"] = round(report["took"], 1)
    print(f"second lab: bootstrap from nothing {report['took']:.1f} s")
    applied_with_every_node(lab, report, "power", "os", "pki", "etcd", "kubernetes", "calico",
                            "calico-resources", "ceph")  # fmt: skip

    end = time.monotonic() + 60
    while (bgp := labctl(lab, "bgp", "status", "-o", "json")).returncode != 0:
        assert time.monotonic() < end, bgp.stdout + bgp.stderr
        time.sleep(2)
    sessions = json.loads(bgp.stdout)["sessions"]
    assert sessions and all(s["established"] for s in sessions), sessions
    assert {s["peer"] for s in sessions} >= {"leaf1"}, sessions

    healthy = wait_healthy(lab)
    assert healthy["quorum"] == ["ada", "bob", "cyd"], healthy
    assert healthy["osds_by_host"] == {n: {"osds": 1, "up": 1, "in": 1} for n in NODES}

    # The APC PDU answers over its rPDU2 profile: every outlet's server reads "on".
    power = labctl(lab, "power", "status", "--all", "--via", "pdu", "-o", "json")
    assert power.returncode == 0, power.stdout + power.stderr
    targets = json.loads(power.stdout)["targets"]
    assert {(t["server"], t["after"] or t["before"]) for t in targets} == {
        (n, "on") for n in NODES
    }, targets

    ceph_watched(lab)

    # etcd and Ceph run as their units' containers under the node's podman.
    assert "LABCTL_CEPH_RUNTIME" not in lab.env()
    running = containers(lab, "ada")
    assert running.get("ceph-mon-ada") == IMAGE, running
    assert running.get("ceph-osd-0") == IMAGE, running
    assert any(name.startswith("etcd") for name in running), running


def prometheus_query(expr: str) -> list[dict[str, Any]]:
    """The series ``expr`` gives now on the second lab's Prometheus."""
    url = prometheus_url(require_inventory(SECOND_LAB))
    query = urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=5) as answer:
        found: list[dict[str, Any]] = json.load(answer)["data"]["result"]
    return found


def ceph_watched(lab: Lab) -> None:
    """Prometheus scrapes every Ceph manager's prometheus module (issue 26): each
    manager the inventory implies is up in the job ``ceph`` (a standby answers
    ``/metrics`` with nothing), and Ceph's own metrics come from the active one only."""
    managers = [t.instance for t in implied_targets(require_inventory(SECOND_LAB))
                if t.job == "ceph"]  # fmt: skip
    assert len(managers) == 2, managers
    # The layer waited for every target; a manager restarted since (its module starts
    # after the daemon) is refused until its module serves again: three scrapes' grace.
    end = time.monotonic() + 90
    while True:
        watched = labctl(lab, "monitoring", "status", "-o", "json")
        jobs = json.loads(watched.stdout)["jobs"]
        if jobs.get("ceph") == {"up": managers}:
            break
        assert time.monotonic() < end, watched.stdout
        time.sleep(5)
    active = json.loads(on(lab, "ada", "ceph mgr stat -f json"))["active_name"]
    assert active in managers, active
    end = time.monotonic() + 60  # the active one's first scrape after its module started
    while not (health := prometheus_query("ceph_health_status")):
        assert time.monotonic() < end, "no ceph_health_status in Prometheus"
        time.sleep(2)
    assert [h["metric"]["instance"] for h in health] == [active], health


# Every second, three fields: the monitors in quorum, the OSDs up, the first 16 hex
# digits of the probe image's sha256 (a failed read hashes nothing).
PROBE = (
    "rm -f /root/probe.log; while :; do "
    "q=$(timeout 20 ceph --connect-timeout 15 quorum_status -f json 2>/dev/null"
    " | grep -o '\"quorum\":\\[[0-9,]*\\]' | grep -o '[0-9]' | wc -l); "
    "u=$(timeout 20 ceph --connect-timeout 15 osd stat -f json 2>/dev/null"
    " | grep -o '\"num_up_osds\":[0-9]*' | grep -o '[0-9]*$'); "
    "s=$(timeout 30 rbd export --no-progress rbd/probe - 2>/dev/null | sha256sum | cut -c1-16); "
    'echo "$q ${u:-0} $s" >> /root/probe.log; sleep 1; done'
)


def all_containers(lab: Lab) -> dict[str, tuple[str, str]]:
    """Every Ceph container on the lab: name -> (image, container id)."""
    found = {}
    for node in NODES:
        out = on(lab, node, "podman ps --format '{{.Names}} {{.Image}} {{.ID}}'")
        for line in out.splitlines():
            name, image, ident = line.split()
            if name.startswith("ceph-"):
                found[name] = (image, ident)
    return found


def running_image(lab: Lab, node: str, name: str) -> str:
    """The image ``name`` runs on ``node``, or what podman said instead (it may be busy
    starting the container)."""
    done = lab.ssh(NODES[node], f"podman ps --filter name=^{name}$ --format '{{{{.Image}}}}'")
    return done.stdout.strip() or done.stderr.strip()


def started_at(lab: Lab) -> dict[str, int]:
    """Every Ceph container on the lab: name -> when its engine started it (Unix s)."""
    found = {}
    for node in NODES:
        for container in json.loads(on(lab, node, "podman ps --format json") or "[]"):
            name = container["Names"][0]
            if name.startswith("ceph-"):
                found[name] = int(container["StartedAt"])
    return found


# The MDS map's flag bit (ceph_fs.h; cephadm's upgrade reads it the same way).
ALLOW_STANDBY_REPLAY = 1 << 5


def mds_map(lab: Lab) -> dict[str, Any]:
    """The second lab's one CephFS as the monitors hold it (`ceph fs get`)."""
    got: dict[str, Any] = json.loads(on(lab, "ada", "ceph fs get cephfs -f json"))["mdsmap"]
    return got


def mds_rules_hold(lab: Lab) -> None:
    """Ceph's rules for upgrading MDSs (docs.ceph.com, cephfs/upgrading): no
    standby-replay, one rank (`max_mds` 1), so two active MDSs never talk across
    versions. labctl makes its filesystems so and never changes either."""
    mdsmap = mds_map(lab)
    assert mdsmap["max_mds"] == 1, mdsmap["max_mds"]
    assert not mdsmap["flags"] & ALLOW_STANDBY_REPLAY, mdsmap["flags"]


def roll(
    lab: Lab, edits: tuple[tuple[str, str], ...], image: str, sim_up_timeout: float = 300
) -> str:
    """Edit the inventory (``edits``: old text, new) so its Ceph daemons run ``image``,
    make the image with `sim up` on the running lab (as a mirror is synced before the
    change), then roll: `plan` shows the order first, a probe reads the quorum, the OSDs
    up and an RBD image every second, the run is killed once the first host's OSD runs
    ``image`` and resumed.
    Checked: Ceph's order at the kill and, from the engine's start times, mons then
    mgrs then OSDs then MDSs over the whole roll (Ceph's MDS rules holding before and
    after it), every daemon on ``image`` after,
    nothing on it at the kill restarted again, ``ok-to-stop`` asked, each monitor's
    restart waited for until it was back in quorum and each OSD host's until every PG
    was active+clean (the two runs' changed steps), no failed read, quorum never below
    two of three, never two hosts' OSDs down, ``noout`` gone. The resumed run's steps,
    as words."""
    inventory = lab.workdir / "inventory.yaml"
    on(lab, "ada", "head -c 1048576 /dev/urandom > /root/probe && "
       "rbd import --no-progress /root/probe rbd/probe")  # fmt: skip
    want = on(lab, "ada", "sha256sum /root/probe").split()[0][:16]
    text = inventory.read_text()
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    inventory.write_text(text)
    started = time.monotonic()
    synced = labctl(lab, "sim", "up", timeout=sim_up_timeout)
    TIMES["image"] = round(time.monotonic() - started, 1)
    assert synced.returncode == 0 and image in synced.stdout, synced.stdout + synced.stderr

    # `plan` shows the order before anything moves: every monitor's restart, then the
    # managers', then the OSDs' (the layer's dry run, plan by plan, on stderr).
    planned = labctl(lab, "plan", "ceph", "--layers", timeout=300)
    assert planned.returncode in (0, 1), planned.stdout + planned.stderr
    would = [line for line in planned.stderr.splitlines() if " would-change " in line]
    kinds = [
        k for line in would for k in ("mon", "mgr", "osd", "mds") if f"restart ceph-{k}-" in line
    ]
    assert kinds == ["mon"] * 3 + ["mgr"] * 2 + ["osd"] * 4 + ["mds"] * 2, planned.stderr[-4000:]
    mds_rules_hold(lab)
    before = started_at(lab)

    on(lab, "ada", f"nohup sh -c {shlex.quote(PROBE)} </dev/null >/dev/null 2>&1 & "
       "echo $! > /root/probe.pid")  # fmt: skip
    started = time.monotonic()
    # The killed run's finished steps, one plain line each (no terminal): "NODE OUTCOME
    # DESCRIPTION" on stderr.
    killed_log = lab.workdir / "killed-roll.log"
    with killed_log.open("w") as log:
        run = subprocess.Popen(
            [sys.executable, "-m", "labctl", "bootstrap", "--only", "ceph"],
            cwd=lab.workdir, env={**os.environ, **lab.env()},
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    try:  # killed once the first host's OSD runs the new image
        end = time.monotonic() + 600
        while (osd0 := running_image(lab, "ada", "ceph-osd-0")) != image:
            assert run.poll() is None, "the roll ended before ada's OSD was restarted"
            assert time.monotonic() < end, osd0
            time.sleep(0.5)
        run.kill()
    finally:
        run.kill()
        run.wait()
    at_kill = all_containers(lab)
    moved = {n for n, (running, _) in at_kill.items() if running == image}
    # Ceph's order: every monitor and manager before any OSD; then one host's OSDs.
    assert moved == {"ceph-mon-ada", "ceph-mon-bob", "ceph-mon-cyd", "ceph-mgr-ada",
                     "ceph-mgr-bob", "ceph-osd-0"}, at_kill  # fmt: skip

    resumed = bootstrap(lab, "--only", "ceph")
    TIMES["roll"] = round(time.monotonic() - started, 1)
    on(lab, "ada", "kill $(cat /root/probe.pid)")
    after = all_containers(lab)
    assert {running for running, _ in after.values()} == {image}, after
    # Ceph's order over the whole roll, in the daemons' start times: every kind of
    # daemon restarted (none kept its start), and each kind only once the kind before
    # it had (to the engine's second).
    starts = started_at(lab)
    assert not {n for n, t in starts.items() if before.get(n) == t}, (before, starts)
    order = ("mon", "mgr", "osd", "mds")
    by_kind = {k: [t for n, t in starts.items() if n.startswith(f"ceph-{k}-")] for k in order}
    assert all(by_kind.values()) and len(by_kind["mds"]) == 2, starts
    for first, then in itertools.pairwise(order):
        assert max(by_kind[first]) <= min(by_kind[then]), (first, then, starts)
    mds_rules_hold(lab)
    # What was on the new image when the run was killed was not restarted again.
    assert {n: at_kill[n][1] for n in moved} == {n: after[n][1] for n in moved}
    said = " ".join(s["description"] + " " + s["outcome"] for s in steps_of(resumed))
    assert "ok-to-stop" in said, said[-3000:]
    # The restarts' own waits, in steps that ran (changed): the monitors' in the killed
    # run (all three were restarted before it), the OSD hosts' in the resumed one.
    killed = [line for line in killed_log.read_text().splitlines() if " changed " in line]
    mons = [line for line in killed if "then wait until it is back in quorum" in line]
    assert len(mons) == 3, killed
    changed = [s["description"] for s in steps_of(resumed) if s["outcome"] == "changed"]
    assert any("every PG is active+clean" in d for d in changed), changed
    samples = [line.split() for line in on(lab, "ada", "cat /root/probe.log").splitlines()]
    assert len(samples) >= 5, samples
    assert all(int(q) >= 2 for q, _, _ in samples), samples  # quorum held throughout
    assert all(int(up) >= 3 for _, up, _ in samples), samples  # never two hosts' OSDs down
    assert all(got == want for _, _, got in samples), samples  # no failed read
    assert "noout" not in on(lab, "ada", "ceph osd dump | grep ^flags")
    TIMES["probe reads"] = len(samples)
    return said


# The ceph.conf change the image change carries: an option every daemon reads from
# [global] at start only, not at its default (1), harmless to a lab this size.
CONF_OPTION, CONF_OLD, CONF_NEW = "osd_max_backfills", "1", "2"


def conf_values(lab: Lab) -> dict[str, str]:
    """CONF_OPTION as each monitor and OSD daemon itself holds it (``ceph tell``: the
    running daemon answers, not the cluster's configuration database)."""
    out = on(lab, "ada", "for d in mon.ada mon.bob mon.cyd $(ceph osd ls | sed 's/^/osd./'); do"
             f" echo \"$d $(ceph tell $d config get {CONF_OPTION} -f json | tr -d '\\n')\"; done",
             timeout=120)  # fmt: skip
    found = {}
    for line in out.splitlines():
        daemon, answer = line.split(" ", 1)
        found[daemon] = str(json.loads(answer)[CONF_OPTION])
    return found


def test_an_image_change_rolls_ceph_in_order_and_resumes_after_a_kill(lab: Lab) -> None:
    """The image renamed to a mirror's name for the same release, and one ceph.config
    option added in the same edit: every daemon restarts onto both, mons then mgrs then
    OSDs host by host, quorum and reads never fail, and a run killed in the OSDs' part
    restarts again only what is not on the new image yet. Then every monitor and OSD
    holds the option's new value (a conf-only change's restart is proven by
    tests/unit/ceph/test_conf_roll.py and test_rolling_restart.py: the same steps and
    scripts, triggered by ceph.conf's digest)."""
    before = conf_values(lab)
    assert len(before) == 3 + 4 and set(before.values()) == {CONF_OLD}, before
    public = "    public_network: public\n"
    last = "      mon_osd_down_out_interval: 3600\n"
    roll(
        lab,
        (
            (public, f"{public}    image: {MIRROR}\n"),
            (last, f"{last}      {CONF_OPTION}: {CONF_NEW}\n"),
        ),
        MIRROR,
    )
    wait_healthy(lab)
    after = conf_values(lab)
    assert after == dict.fromkeys(before, CONF_NEW), after
    print(f"image roll, killed and resumed, {TIMES['probe reads']} probe reads: {TIMES['roll']} s")


def test_reset_removes_a_servers_osd_and_monitor(lab: Lab) -> None:
    started = time.monotonic()
    done = labctl(lab, "reset", "cyd", "--yes", "-o", "json", timeout=600)
    TIMES["reset"] = round(time.monotonic() - started, 1)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    kinds = [s["kind"] for s in json.loads(done.stdout)["done"]]
    print(f"reset cyd did: {kinds}")
    assert {"etcd-remove", "osd-out", "osd-wait", "osd-purge", "mon-remove"} <= set(kinds), kinds
    assert kinds.index("osd-wait") < kinds.index("osd-purge") < kinds.index("mon-remove")

    healthy = wait_healthy(lab, 180)
    assert healthy["quorum"] == ["ada", "bob"], healthy
    assert "cyd" not in healthy["osds_by_host"], healthy
    tree = json.loads(on(lab, "ada", "ceph osd tree -f json"))
    assert "cyd" not in {n["name"] for n in tree["nodes"]}, tree
    assert (
        on(lab, "ada", "rbd export --no-progress rbd/probe - | sha256sum").split()[0][:16]
        == on(lab, "ada", "sha256sum /root/probe").split()[0][:16]
    )


def test_bootstrap_makes_a_reset_servers_osd_and_monitor_again(lab: Lab) -> None:
    """The reset kept cyd's OS and powered it off: the power layer turns it on and the
    os layer waits for it to boot (before, it took cyd for a new machine to install and
    stopped for want of boot assets), then etcd, Kubernetes and Ceph take it back."""
    kept = lab.workdir / ".labctl" / "os" / "reset" / "cyd.json"
    assert kept.exists(), "the reset did not record that cyd's OS was kept"
    started = time.monotonic()
    report = bootstrap(lab)
    TIMES["rebuild"] = round(time.monotonic() - started, 1)
    steps = steps_of(report)
    assert not [s["step_id"] for s in steps if "os.boot-start" in s["step_id"]], steps
    assert not kept.exists()  # back with its OS: a server like any other
    healthy = wait_healthy(lab, 300)
    assert healthy["quorum"] == ["ada", "bob", "cyd"], healthy
    assert healthy["osds_by_host"]["cyd"] == {"osds": 1, "up": 1, "in": 1}, healthy
    members = json.loads(labctl(lab, "etcd", "status", "-o", "json").stdout)
    assert "cyd" in json.dumps(members), members
    print(f"reset cyd {TIMES['reset']} s, bootstrap back {TIMES['rebuild']} s")


def _tls(kubeconfig: Path, into: Path) -> ssl.SSLContext:
    """The admin's client certificate and the CA, from the kubeconfig labctl writes."""
    config = yaml.safe_load(kubeconfig.read_text())
    user, cluster = config["users"][0]["user"], config["clusters"][0]["cluster"]
    files = {}
    for name, key in (("ca.pem", "certificate-authority-data"),
                      ("admin.pem", "client-certificate-data"),
                      ("admin-key.pem", "client-key-data")):  # fmt: skip
        path = into / name
        path.write_bytes(base64.b64decode((cluster | user)[key]))
        path.chmod(0o600)
        files[name] = path
    context = ssl.create_default_context(cafile=str(files["ca.pem"]))
    context.check_hostname = False  # dialled by address; the chain is still checked
    context.load_cert_chain(files["admin.pem"], files["admin-key.pem"])
    return context


def _lists_nodes(context: ssl.SSLContext, address: str) -> bool:
    """Whether the API server on ``address`` lists the Nodes (within 1 s)."""
    conn = http.client.HTTPSConnection(address, 6443, timeout=1, context=context)
    try:
        conn.request("GET", "/api/v1/nodes")
        response = conn.getresponse()
        return response.status == 200 and b'"NodeList"' in response.read()
    except OSError:
        return False
    finally:
        conn.close()


def _etcd(lab: Lab, timeout: float) -> EtcdClient:
    folder = lab.workdir / "ssl"
    key = next(folder.glob("etcd-client-*-key.pem"))
    tls = EtcdTls(folder / "ca.pem", Path(str(key).replace("-key.pem", ".pem")), key)
    members = [EtcdEndpoint(n, f"https://{NODES[n]}:2379") for n in ("ada", "bob", "cyd")]
    return EtcdClient(members, tls, timeout)


def test_a_kubernetes_upgrade_keeps_the_api_etcd_and_rbd_answering(
    lab: Lab, tmp_path: Path
) -> None:
    admin = lab.workdir / "admin.conf"
    assert labctl(lab, "kubeconfig", "--write", str(admin)).returncode == 0
    context = _tls(admin, tmp_path)
    with _etcd(lab, 2.0) as kv:
        kv.put("/labctl/upgrade-probe", b"kept")
    want = on(lab, "ada", "sha256sum /root/probe").split()[0][:16]
    on(lab, "ada", f"nohup sh -c {shlex.quote(PROBE)} </dev/null >/dev/null 2>&1 & "
       "echo $! > /root/probe.pid")  # fmt: skip

    api: list[tuple[bool, bool]] = []
    etcd_failed: list[str] = []
    stop = threading.Event()

    def probe() -> None:
        with _etcd(lab, 1.0) as kv:
            while not stop.is_set():
                started = time.monotonic()
                api.append(tuple(_lists_nodes(context, NODES[n]) for n in PLANES))  # type: ignore[arg-type]
                try:
                    if (got := kv.get("/labctl/upgrade-probe")) != b"kept":
                        etcd_failed.append(f"sample {len(api)}: read {got!r}")
                except LabctlError as exc:
                    etcd_failed.append(f"sample {len(api)}: {exc}")
                stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))

    (lab.workdir / "inventory.yaml").write_text(
        (lab.workdir / "inventory.yaml")
        .read_text()
        .replace(f"    version: {KUBE_OLD}\n", f"    version: {KUBE_NEW}\n", 1)
    )
    prober = threading.Thread(target=probe)
    prober.start()
    start = time.monotonic()
    try:
        report = bootstrap(lab, "--only", "kubernetes")
    finally:
        TIMES["kubernetes upgrade"] = round(time.monotonic() - start, 1)
        stop.set()
        prober.join()
        on(lab, "ada", "kill $(cat /root/probe.pid)")
    samples = [line.split() for line in on(lab, "ada", "cat /root/probe.log").splitlines()]
    print(
        f"kubernetes {KUBE_OLD} -> {KUBE_NEW}, 2 control-plane nodes + 2: "
        f"{TIMES['kubernetes upgrade']} s; {len(api)} API and etcd samples, "
        f"{len(samples)} RBD reads"
    )

    # Every second one API server or the other listed the Nodes: never both down, and
    # each was restarted (seen down at least once).
    assert not [i for i, seen in enumerate(api) if not any(seen)], api
    assert all(any(not seen[i] for seen in api) for i in range(len(PLANES))), api
    assert not etcd_failed, etcd_failed  # no failed etcd read
    assert len(samples) >= 5, samples
    assert all(got == want for _, _, got in samples), samples  # no failed RBD read
    assert all(int(up) >= 3 for _, up, _ in samples), samples  # one host's OSD down at most

    steps = steps_of(report)
    drained = [s["step_id"] for s in steps if s["step_id"].startswith(f"local:{upgrade.DRAIN}")]
    assert drained[:2] == [f"local:{upgrade.DRAIN}:{n}" for n in PLANES], drained
    assert sorted(drained) == sorted(f"local:{upgrade.DRAIN}:{n}" for n in NODES), drained
    nodes = json.loads(labctl(lab, "kubernetes", "status", "-o", "json").stdout)["nodes"]
    assert {n["name"]: n["kubelet_version"] for n in nodes} == dict.fromkeys(
        NODES, f"v{KUBE_NEW}"
    ), nodes
    wait_healthy(lab, 120)


# What Kubernetes, Calico, Ceph and etcd leave on a node, looked at with the node's own
# shell, one line per thing left: their state and configuration folders' entries, the
# units that start them at boot, the OSD device's first MiB (Bluestore's label is at
# its start), and their processes (the node is a pid namespace of its own, so `ps`
# lists only what runs on it: etcd and Ceph are podman containers here, the control
# plane static pods under containerd).
WIPED_DIRS = (
    "/var/lib/etcd /etc/etcd /etc/ssl/etcd /var/lib/kubelet /var/lib/kube-proxy"
    " /etc/kubernetes /var/lib/ceph /etc/ceph /etc/cni/net.d /var/lib/calico /etc/calico"
)
NODE_LEFT = (
    f"for d in {WIPED_DIRS}; do"
    ' [ -d "$d" ] && find "$d" -mindepth 1 -maxdepth 1 -printf "file %p\\n"; done;'
    " ls /etc/systemd/system | grep -E 'etcd|kube|ceph|calico|containerd'"
    " | sed 's/^/unit /';"
    " nonzero=$(head -c 1048576 /dev/sdb | tr -d '\\000' | wc -c);"
    ' [ "$nonzero" -eq 0 ] || echo "osd device /dev/sdb: $nonzero bytes of its first MiB";'
    " ps -eo comm= | grep -E '^(etcd|ceph|kube|calico|bird|felix|conmon|containerd|pause)'"
    " | sed 's/^/process /';"
    " podman ps -a --format '{{.Names}}' | sed 's/^/container /'; true"
)

# What the node's OS has there before labctl, not labctl's: a simulated node's /etc is
# an overlay of this machine's, where Debian's etcd package aliases etcd2.service,
# ceph-base made ceph.target.wants, and libcni keeps its lock.
OS_GIVEN = {"unit etcd2.service", "unit ceph.target.wants", "file /etc/cni/net.d/cni.lock"}


def test_reset_all_after_every_layer_leaves_nothing_and_a_bootstrap_builds_again(
    lab: Lab,
) -> None:
    """`labctl reset --all` on a lab where every layer ran (Kubernetes with two
    control-plane nodes, Calico, Ceph and etcd under podman): refused without a
    terminal, with every server's losses named; with --yes every server wiped and
    powered off; powered on, no node holds anything those layers left; then
    `bootstrap` builds every layer again from nothing."""
    started = time.monotonic()
    state = lab.workdir / ".labctl"
    # The fsid is the inventory's: a new Ceph cluster is told by its monmap's birth.
    old_created = json.loads(on(lab, "ada", "ceph mon dump -f json"))["created"]
    for name in NODES:  # what the wipe must remove is there before it
        there = on(lab, name, NODE_LEFT)
        assert "file /var/lib/ceph/" in there and "osd device /dev/sdb" in there, there
        if name != "dot":  # dot is no etcd member
            assert "file /var/lib/etcd/member" in there and "process etcd" in there, there
        assert "file /var/lib/kubelet/" in there and "process kubelet" in there, there

    # No terminal, no --yes: every server and what it loses is named; nothing changes.
    journal = (state / "journal.jsonl").read_bytes()
    refused = labctl(lab, "reset", "--all")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    said = refused.stderr
    assert (
        "refusing to reset the whole lab (ada, bob, cyd, dot) without a terminal to "
        "confirm; add --yes" in said
    ), said
    for name in NODES:
        line = next((x for x in said.splitlines() if f"wipe {name}:" in x), "")
        assert "etcd member data (/var/lib/etcd, moved aside)" in line or name == "dot", said
        assert "Kubernetes state (the kubelet" in line, said
        assert re.search(r"osd\.\d+ on /dev/sdb \(each device's first MiB zeroed\)", line), said
        assert f"monitor {name}" in line or name == "dot", said
        assert f"power {name} off" in said, said
    assert "the kubelet and the control plane" in said.split("wipe ada:")[1].split("\n")[0]
    assert (state / "journal.jsonl").read_bytes() == journal
    assert "ceph-mon-ada" in containers(lab, "ada")

    before = time.monotonic()
    done = labctl(lab, "reset", "--all", "--yes", "-o", "json", timeout=600)
    TIMES["reset --all"] = round(time.monotonic() - before, 1)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert [(s["kind"], s["server"]) for s in json.loads(done.stdout)["done"]] == [
        (kind, name) for name in NODES for kind in ("wipe", "power-off")
    ]
    assert TokenRecord.load(state) is None

    # Powered on again, before any other layer: nothing of etcd, Kubernetes, Calico or
    # Ceph is on any node, nor running.
    before = time.monotonic()
    done = labctl(lab, "bootstrap", "--only", "power", timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    left = {}
    for name, address in NODES.items():
        end = time.monotonic() + 90
        while (seen := lab.ssh(address, NODE_LEFT, connect_timeout=3)).returncode != 0:
            assert time.monotonic() < end, (name, seen.stdout + seen.stderr)
            time.sleep(1)
        left[name] = [line for line in seen.stdout.splitlines() if line not in OS_GIVEN]
    TIMES["powered on, looked at"] = round(time.monotonic() - before, 1)
    assert left == {name: [] for name in NODES}, json.dumps(left, indent=1)

    # Built again from nothing, every layer: a new etcd cluster, Kubernetes with every
    # Node, Calico, a new Ceph cluster (its monitors in quorum, every OSD prepared anew
    # on its zeroed device) and monitoring.
    before = time.monotonic()
    report = bootstrap(lab)
    TIMES["bootstrap, every layer"] = round(time.monotonic() - before, 1)
    applied_with_every_node(lab, report, "etcd", "kubernetes", "calico", "calico-resources",
                            "ceph", "monitoring")  # fmt: skip
    members = json.loads(labctl(lab, "etcd", "status", "-o", "json").stdout)
    assert all(n in json.dumps(members) for n in ("ada", "bob", "cyd")), members
    healthy = wait_healthy(lab, 180)
    assert healthy["quorum"] == ["ada", "bob", "cyd"], healthy
    assert healthy["osds_by_host"] == {n: {"osds": 1, "up": 1, "in": 1} for n in NODES}
    assert json.loads(on(lab, "ada", "ceph mon dump -f json"))["created"] != old_created
    print(f"reset --all after every layer: {TIMES}, whole test {time.monotonic() - started:.1f} s")


# Reef as Debian 13 packages it (the release after next of this machine's Pacific: Ceph
# upgrades across two major releases at once, labctl/labdiff/skew.py).
CEPH_NEW, CEPH_NEW_RELEASE = "18.2.7", "reef"


def test_a_version_change_rolls_ceph_to_reef_and_requires_its_osd_release(lab: Lab) -> None:
    """cluster.ceph.version 16.2.15 -> 18.2.7 (Pacific to Reef), the mirror's image
    tag with it: `sim up` makes the Reef image (from a Debian 13 root, made once under
    the image cache), the roll goes in Ceph's order and resumes after a kill as the
    image change's did, then the OSD map requires Reef and every daemon reports 18.2.7;
    HEALTH_OK at the end, and Prometheus scrapes both managers on Reef, the standby's
    prometheus module included (Debian 13's ceph-mgr started no standby module until
    the image's diff of labctl/data/patches: docs/sim.md, "The Ceph image")."""
    started = time.monotonic()
    new_image = MIRROR.replace(":v16.2.15", f":v{CEPH_NEW}")
    inventory = (lab.workdir / "inventory.yaml").read_text()
    assert f"    image: {MIRROR}\n" in inventory  # the image change's mirror, still named
    said = roll(
        lab,
        ((f"    image: {MIRROR}\n", f"    image: {new_image}\n    version: {CEPH_NEW}\n"),),
        new_image,
        sim_up_timeout=900,  # the Debian 13 root: about 70 s the first time (network)
    )
    assert "require-osd-release" in said, said[-3000:]
    # Every daemon runs the new release, and the OSD map requires it (Ceph's last step).
    versions = json.loads(on(lab, "ada", "ceph versions -f json"))
    assert [v for v in versions["overall"] if f"ceph version {CEPH_NEW} " not in v] == [], versions
    assert set(versions) >= {"mon", "mgr", "osd"}, versions
    dump = json.loads(on(lab, "ada", "ceph osd dump -f json"))
    assert dump["require_osd_release"] == CEPH_NEW_RELEASE, dump["require_osd_release"]
    wait_healthy(lab)
    # Every manager the monitoring layer's targets name answers on :9283, the standby too.
    before = time.monotonic()
    ceph_watched(lab)
    TIMES["managers watched on reef"] = round(time.monotonic() - before, 1)
    converged = bootstrap(lab, "--only", "ceph")
    moved = [s["description"] for s in steps_of(converged) if s["outcome"] == "changed"]
    assert moved == [], moved
    print(
        f"ceph {CEPH_NEW}: image made by sim up {TIMES['image']} s; version roll, killed and "
        f"resumed, {TIMES['probe reads']} probe reads: {TIMES['roll']} s; both managers "
        f"watched: {TIMES['managers watched on reef']} s; whole test "
        f"{time.monotonic() - started:.1f} s"
    )
