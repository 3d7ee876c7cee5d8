"""The API server's audit policy: who did what, never the content of secrets.

Metadata for everything, so every request is accounted for; request bodies for
writes to RBAC and workloads would be more telling but also carry secrets, so no
level above Metadata is used. Health probes and the components' own leases are
left out: they are most of the traffic and say nothing.
"""

from __future__ import annotations

from typing import Any


def policy() -> dict[str, Any]:
    return {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [
            {"level": "None", "nonResourceURLs": ["/healthz*", "/livez*", "/readyz*", "/version"]},
            {
                "level": "None",
                "verbs": ["get", "update"],
                "namespaces": ["kube-system", "kube-node-lease"],
                "resources": [{"group": "coordination.k8s.io", "resources": ["leases"]}],
            },
            {"level": "None", "users": ["system:kube-proxy"], "verbs": ["watch"]},
            {"level": "Metadata"},
        ],
    }
