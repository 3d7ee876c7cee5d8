"""Stand-in definitions of Calico's kinds for a lab whose inventory names no manifest (pure).

On the simulated lab BIRD stands in for calico-node and no Calico manifest can be
fetched (there is no internet here). So that the real API server can still hold
the IPPool, BGPConfiguration and BGPPeer labctl renders, the calico layer applies
these CustomResourceDefinitions in the ``projectcalico.org/v3`` group, with open
schemas: they store the objects and check nothing. Calico's own native-v3 CRD
manifest declares the same kinds with full schemas; a lab that names it in
``cluster.calico.manifest`` gets those instead. Written by labctl, not copied.
"""

from __future__ import annotations

from typing import Any

GROUP = "projectcalico.org"
VERSION = "v3"
# kind -> plural, for the kinds labctl applies (render/calico.py:calico_kinds).
KINDS = {
    "IPPool": "ippools",
    "BGPConfiguration": "bgpconfigurations",
    "BGPPeer": "bgppeers",
}


def definition(kind: str, plural: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{GROUP}",
            "labels": {"app.kubernetes.io/managed-by": "labctl", "labctl/stand-in": "true"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Cluster",
            "names": {
                "kind": kind,
                "plural": plural,
                "singular": kind.lower(),
                "listKind": f"{kind}List",
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


def definitions() -> list[dict[str, Any]]:
    return [definition(kind, plural) for kind, plural in KINDS.items()]
