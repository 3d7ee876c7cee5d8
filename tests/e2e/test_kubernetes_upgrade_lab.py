"""A rolling Kubernetes upgrade on the simulated lab: 1.35.4 to 1.36.3, both built here.

The reference lab with chequita a second control-plane node (so the API can stay up
while one restarts) is bootstrapped at 1.35.4 (power, pki, etcd, kubernetes: what
an upgrade needs, nothing more), then its inventory names 1.36.3 and ``labctl
bootstrap --only kubernetes`` runs. A probe reads the Nodes from each API server
every second through the whole upgrade: at every sample at least one answered (a
client that knows both addresses never failed a read) and never were both down.
After it, every kubelet reports v1.36.3, every Node is schedulable again and
carries no upgrade mark, each node was drained first, and the time it took is
printed (docs/performance.md). Its own lab: the shared one runs the default version.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import threading
import time
from pathlib import Path

import pytest
import yaml

from labctl.kubernetes import upgrade
from tests.e2e.conftest import NODES, simulated_lab
from tests.e2e.test_kubernetes_lab import TWO_CONTROL_PLANES, bootstrap, labctl

pytestmark = pytest.mark.e2e
OLD, NEW = "1.35.4", "1.36.3"
AT_OLD = TWO_CONTROL_PLANES.replace(f"    version: {NEW} ", f"    version: {OLD} ", 1)


def _tls(kubeconfig: Path, into: Path) -> ssl.SSLContext:
    """The admin's client certificate and the CA, from the kubeconfig labctl writes."""
    config = yaml.safe_load(kubeconfig.read_text())
    user, cluster = config["users"][0]["user"], config["clusters"][0]["cluster"]
    files = {}
    for name, key in (("ca.pem", "certificate-authority-data"),
                      ("admin.pem", "client-certificate-data"),
                      ("admin-key.pem", "client-key-data")):  # fmt: skip
        path = into / name
        data = (cluster | user)[key]
        path.write_bytes(base64.b64decode(data))
        path.chmod(0o600)
        files[name] = path
    context = ssl.create_default_context(cafile=str(files["ca.pem"]))
    context.check_hostname = False  # dialled by address; the chain is still checked
    context.load_cert_chain(files["admin.pem"], files["admin-key.pem"])
    return context


def _reads(context: ssl.SSLContext, address: str) -> bool:
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


def test_a_version_change_upgrades_node_by_node_and_the_api_keeps_answering(
    tmp_path: Path,
) -> None:
    with simulated_lab(tmp_path, AT_OLD) as lab:
        bootstrap(lab, "--only", "power", "--only", "pki", "--only", "etcd", "--only",
                  "kubernetes")  # fmt: skip
        admin = lab.workdir / "admin.conf"
        assert labctl(lab, "kubeconfig", "--write", str(admin)).returncode == 0
        context = _tls(admin, tmp_path)
        planes = (NODES["fohn"], NODES["chequita"])
        assert all(_reads(context, a) for a in planes)

        inventory = lab.workdir / "inventory.yaml"
        inventory.write_text(TWO_CONTROL_PLANES)
        seen: list[tuple[bool, bool]] = []
        stop = threading.Event()

        def probe() -> None:
            while not stop.is_set():
                started = time.monotonic()
                seen.append((_reads(context, planes[0]), _reads(context, planes[1])))
                stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))

        prober = threading.Thread(target=probe)
        prober.start()
        start = time.monotonic()
        try:
            report = bootstrap(lab, "--only", "kubernetes")
        finally:
            took = time.monotonic() - start
            stop.set()
            prober.join()
        print(f"kubernetes {OLD} -> {NEW}, 2 control-plane nodes + 1: {took:.1f} s, "
              f"{len(seen)} probe samples")  # fmt: skip

        # Every second, one API server or the other listed the Nodes; never both down.
        failed = [i for i, (f, c) in enumerate(seen) if not f and not c]
        assert not failed, f"no API server answered at samples {failed} of {len(seen)}"
        # Each control-plane node was restarted: the probe saw each one down at least once.
        assert any(not f for f, _ in seen) and any(not c for _, c in seen), seen

        steps = [
            s
            for layer in report["layers"]  # type: ignore[union-attr]
            for plan in layer["plans"]
            for s in plan["steps"]
        ]
        drained = [s["step_id"] for s in steps if s["step_id"].startswith(f"local:{upgrade.DRAIN}")]
        assert drained == [f"local:{upgrade.DRAIN}:{n}" for n in ("fohn", "chequita", "wind")]
        assert all(s["outcome"] == "changed" for s in steps if s["step_id"] in drained)

        nodes = (
            json.loads(labctl(lab, "kubernetes", "status", "-o", "json").stdout or "{}").get(
                "nodes"
            )
            or []
        )
        listed = {n["name"]: n["kubelet_version"] for n in nodes}
        assert listed == dict.fromkeys(("fohn", "chequita", "wind"), f"v{NEW}"), listed
        conn = http.client.HTTPSConnection(planes[0], 6443, timeout=5, context=context)
        conn.request("GET", "/api/v1/nodes")
        items = json.loads(conn.getresponse().read())["items"]
        conn.close()
        for item in items:
            name = item["metadata"]["name"]
            assert not item["spec"].get("unschedulable"), f"{name} is still cordoned"
            assert upgrade.ANNOTATION not in (item["metadata"].get("annotations") or {}), name

        # A re-run at the new version drains nothing: the plan is as before an upgrade.
        again = bootstrap(lab, "--only", "kubernetes")
        ids = {s["step_id"] for layer in again["layers"] for plan in layer["plans"]  # type: ignore[union-attr]
               for s in plan["steps"]}  # fmt: skip
        assert not any(i.startswith(f"local:{upgrade.DRAIN}") for i in ids), ids
