"""prometheus.yml and the RBAC Prometheus's identity needs, from the inventory.

One job per kind of target (``targets.py``); each target carries its inventory
name as ``instance`` so alerts say "fohn", not an address. The IPMI and SNMP
exporters run beside Prometheus and are asked about a device through
``?target=&module=``, the module named after the device (its credentials live in
the exporter's own root-only file, never here). etcd, the API server, the
controller-manager, the scheduler and the kubelets are scraped over TLS with the
``prometheus`` client certificate; ``rbac`` grants that identity reading
``/metrics`` and the kubelets' metrics, nothing else.
"""

from __future__ import annotations

from itertools import groupby
from typing import Any

from labctl.inventory.model import Inventory
from labctl.render.monitoring.paths import IDENTITY, SERVER_PATHS, Paths
from labctl.render.monitoring.targets import Target, targets

EXPORTER_PATHS = {"ipmi": "/ipmi", "snmp-pdu": "/snmp", "snmp-bgp": "/snmp"}
ETCD_TLS = ("etcd",)
KUBE_TLS = ("apiserver", "controller-manager", "scheduler", "kubelet")


def _static(group: list[Target], module: bool = False) -> list[dict[str, Any]]:
    out = []
    for t in group:
        labels = {"instance": t.instance}
        if module:
            labels["__param_module"] = t.instance
        out.append({"targets": [t.address], "labels": labels})
    return out


def _job(job: str, group: list[Target], paths: Paths) -> dict[str, Any]:
    if job in EXPORTER_PATHS:
        exporter = paths.ipmi_exporter if job == "ipmi" else paths.snmp_exporter
        return {
            "job_name": job,
            "metrics_path": EXPORTER_PATHS[job],
            "static_configs": _static(group, module=True),
            "relabel_configs": [
                {"source_labels": ["__address__"], "target_label": "__param_target"},
                {"target_label": "__address__", "replacement": exporter},
            ],
        }
    doc: dict[str, Any] = {"job_name": job, "static_configs": _static(group)}
    if job in ETCD_TLS:
        doc["scheme"] = "https"
        doc["tls_config"] = {
            "ca_file": paths.etcd_ca,
            "cert_file": paths.etcd_cert,
            "key_file": paths.etcd_key,
        }
    elif job in KUBE_TLS:
        doc["scheme"] = "https"
        doc["tls_config"] = {
            "ca_file": paths.kube_ca,
            "cert_file": paths.kube_cert,
            "key_file": paths.kube_key,
        }
        if job in ("controller-manager", "scheduler"):
            # Their serving certificates are self-signed at start (no --tls-cert-file):
            # the client certificate still authenticates Prometheus to them.
            doc["tls_config"]["insecure_skip_verify"] = True
    return doc


def prometheus_config(inv: Inventory, paths: Paths = SERVER_PATHS) -> dict[str, Any]:
    mon = inv.cluster.monitoring
    found = targets(inv)
    alertmanagers = [t.address for t in found if t.job == "alertmanager"]
    jobs = [_job(job, list(group), paths) for job, group in groupby(found, key=lambda t: t.job)]
    return {
        "global": {
            "scrape_interval": mon.scrape_interval,
            "evaluation_interval": mon.scrape_interval,
            "external_labels": {"lab": inv.lab.name},
        },
        "rule_files": [paths.rules],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": alertmanagers}]}]},
        "scrape_configs": jobs,
    }


def rbac() -> list[dict[str, Any]]:
    """A ClusterRole reading metrics and nothing else, bound to the ``prometheus`` user
    (its client certificate's CN). The kubelet authorizes ``nodes/metrics``."""
    name = f"labctl:{IDENTITY}"
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name},
            "rules": [
                {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": name,
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": IDENTITY}
            ],
        },
    ]


def prometheus_flags(inv: Inventory, config: str = "/etc/prometheus/prometheus.yml") -> list[str]:
    """Prometheus's command line: retention is a flag, not part of prometheus.yml."""
    return [
        f"--config.file={config}",
        f"--storage.tsdb.retention.time={inv.cluster.monitoring.retention}",
    ]
