"""Draining a Node through the API: cordon it, evict its pods, wait until they are gone.

Two callers share it: ``labctl reset`` (``day2/apply.py``) before a server leaves,
and the kubernetes layer's rolling upgrade (``kubernetes/upgrade.py``) before a
node's kubelet is restarted at a new version. Evictions go through the API's
eviction subresource, so PodDisruptionBudgets are respected: a pod a budget holds
is asked again every two seconds. The wait is bounded; when it runs out the
sentence names the pods a budget blocks and those still stopping. DaemonSets'
pods, static (mirror) pods and finished pods stay, as ``kubectl drain`` leaves them.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from labctl.errors import DriverTimeout, LabctlError


def cordon(client: Any, node: str, unschedulable: bool = True,
           annotations: dict[str, str | None] | None = None) -> None:  # fmt: skip
    """Mark ``node`` (un)schedulable, with ``annotations`` merged (None removes one)."""
    patch: dict[str, Any] = {"spec": {"unschedulable": unschedulable}}
    if annotations:
        patch["metadata"] = {"annotations": annotations}
    client.json("PATCH", f"/api/v1/nodes/{urllib.parse.quote(node)}", patch,
                "application/merge-patch+json")  # fmt: skip


def drain(
    client: Any,
    node: str,
    wait: float,
    say: Callable[[str], None] = lambda line: None,
    annotations: dict[str, str | None] | None = None,
) -> None:
    """Cordon ``node`` and evict its pods until none is left; ``DriverTimeout`` naming
    the blocking pods after ``wait`` seconds. ``client`` is a ``KubeClient``."""
    cordon(client, node, annotations=annotations)
    selector = urllib.parse.quote(f"spec.nodeName={node}")
    end = time.monotonic() + wait
    while True:
        pods = [p for p in client.list(f"/api/v1/pods?fieldSelector={selector}") if evicted(p)]
        if not pods:
            return
        blocked, going = [], []
        for pod in pods:
            meta = pod["metadata"]
            ns, name = meta["namespace"], meta["name"]
            if "deletionTimestamp" in meta:  # evicted: its kubelet is stopping it
                going.append(f"{ns}/{name}")
                continue
            status, body = client.request(
                "POST",
                f"/api/v1/namespaces/{ns}/pods/{name}/eviction",
                {"apiVersion": "policy/v1", "kind": "Eviction",
                 "metadata": {"name": name, "namespace": ns}},
            )  # fmt: skip
            if status == 429:  # a PodDisruptionBudget says not now
                blocked.append(f"{ns}/{name} ({said(body)})")
            elif status >= 400 and status != 404:
                raise LabctlError(f"evicting {ns}/{name} from {node}: HTTP {status} {said(body)}")
        if time.monotonic() > end:
            what = []
            if blocked:
                what.append(f"a PodDisruptionBudget blocks {', '.join(blocked)}")
            if going:
                what.append(f"still stopping: {', '.join(going)}")
            raise DriverTimeout(f"draining {node}: after {wait:g} s, {'; '.join(what)}")
        say(f"  {node}: {len(pods)} pod(s) to go")
        time.sleep(2.0)


def said(body: bytes) -> str:
    """The API's own sentence in an error answer (its cause's, when it gives one)."""
    try:
        status = json.loads(body)
    except ValueError:
        return body.decode(errors="replace")[:200]
    causes = status.get("details", {}).get("causes", [])
    return str(causes[0].get("message") if causes else status.get("message", ""))


def evicted(pod: dict[str, Any]) -> bool:
    """A pod a drain evicts: not a DaemonSet's, not a static (mirror) pod, not finished."""
    meta = pod.get("metadata", {})
    if "kubernetes.io/config.mirror" in meta.get("annotations", {}):
        return False
    if any(o.get("kind") == "DaemonSet" for o in meta.get("ownerReferences", [])):
        return False
    return pod.get("status", {}).get("phase") not in ("Succeeded", "Failed")
