"""The monitoring renders, checked by the programs that will read them, offline.

Debian's promtool (prometheus), amtool (prometheus-alertmanager) and
snmp_exporter's --dry-run (prometheus-snmp-exporter) read what labctl renders for
the reference lab: ``promtool check config`` with every file it names present in a
tmp dir, ``promtool check rules``, ``promtool test rules`` with, for each rule,
series that make it fire and series that keep it quiet, and ``amtool
check-config``. A missing program is a failure (scripts/setup.sh installs them),
never a skip.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from labctl.inventory import topology
from labctl.render import monitoring as m
from labctl.render.monitoring.paths import under
from tests.unit.test_monitoring_render import (
    profile,
    reference,
    stand_in,
    with_alert_for,
    with_receivers,
)

DAY = 86400
# The labels a sample of the pki layer's textfile has in Prometheus (pki/expiry.py writes
# certificate and path; node-exporter's scrape adds job and instance).
CERT = {"job": "node", "instance": "fohn"}


def program(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is part of the dev environment (scripts/setup.sh installs it)")
    return found


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def materialise(tmp_path: Path) -> m.Paths:
    """Paths under tmp_path, with every file prometheus.yml names there."""
    paths = under(str(tmp_path))
    for name in ("etcd_ca", "etcd_cert", "etcd_key", "kube_ca", "kube_cert", "kube_key"):
        Path(getattr(paths, name)).write_text("")
    Path(paths.rules).write_text(m.dump(m.alert_rules(reference())))
    return paths


def test_promtool_checks_prometheus_yml(tmp_path: Path) -> None:
    paths = materialise(tmp_path)
    config = tmp_path / "prometheus.yml"
    config.write_text(m.dump(m.prometheus_config(reference(), paths)))
    done = run(program("promtool"), "check", "config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 1 rule files found" in done.stdout + done.stderr


def test_promtool_checks_the_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(m.dump(m.alert_rules(reference())))
    done = run(program("promtool"), "check", "rules", str(rules))
    assert done.returncode == 0, done.stdout + done.stderr


def test_amtool_checks_alertmanager_yml(tmp_path: Path) -> None:
    paths = under(str(tmp_path))
    Path(paths.secrets).mkdir()
    for name, field in (("ops-hook", "token"), ("ops-mail", "password")):
        Path(paths.secret_file(name, field)).write_text("stand-in\n")
    config = tmp_path / "alertmanager.yml"
    config.write_text(m.dump(m.alertmanager_config(with_receivers(tmp_path), paths)))
    done = run(program("amtool"), "check-config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 receivers" not in done.stdout and " - 3 receivers" in done.stdout


def test_amtool_checks_the_default_alertmanager_yml(tmp_path: Path) -> None:
    config = tmp_path / "alertmanager.yml"
    config.write_text(m.dump(m.alertmanager_config(reference())))
    done = run(program("amtool"), "check-config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr


def snmp_dry_run(tmp_path: Path, doc: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "snmp.yml"
    config.write_text(m.dump(doc))
    exporter = program("prometheus-snmp-exporter")
    return run(exporter, "--dry-run", f"--config.file={config}")


def test_snmp_exporter_reads_snmp_yml(tmp_path: Path) -> None:
    doc = m.snmp_config(reference(), profile, stand_in)
    done = snmp_dry_run(tmp_path, doc)
    assert done.returncode == 0, done.stderr
    assert "Configuration parsed successfully" in done.stderr


def test_snmp_exporter_dry_run_does_refuse_a_broken_module(tmp_path: Path) -> None:
    # The check above means something: the same module without its auth password fails.
    doc = m.snmp_config(reference(), profile, stand_in)
    del doc["pdu1"]["auth"]["password"]
    done = snmp_dry_run(tmp_path, doc)
    assert done.returncode != 0


# -- promtool test rules: one case per rule ------------------------------------


def runbook(alert: str) -> str:
    for rule in m.alert_rules(reference())["groups"][0]["rules"]:
        if rule["alert"] == alert:
            return str(rule["annotations"]["runbook"])
    raise KeyError(alert)


def fires(alert: str, labels: dict[str, str], summary: str) -> dict[str, Any]:
    return {
        "exp_labels": labels,
        "exp_annotations": {"summary": summary, "runbook": runbook(alert)},
    }


def series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def up(job: str, values: dict[str, str]) -> list[dict[str, str]]:
    return [series("up", {"job": job, "instance": i}, v) for i, v in values.items()]


SERVERS = ("fohn", "chequita", "wind")
OSDS = 16


def osds(down: int) -> list[dict[str, str]]:
    return [
        series("ceph_osd_up", {"ceph_daemon": f"osd.{i}"}, "0x30" if i < down else "1x30")
        for i in range(OSDS)
    ]


def pools(active_rbd: int) -> list[dict[str, str]]:
    out = []
    for pool_id, name, total in (("1", "rbd", 1024), ("2", "cephfs_data", 32)):
        active = active_rbd if name == "rbd" else total
        out += [
            series("ceph_pool_metadata", {"pool_id": pool_id, "name": name}, "1x30"),
            series("ceph_pg_total", {"pool_id": pool_id}, f"{total}x30"),
            series("ceph_pg_active", {"pool_id": pool_id}, f"{active}x30"),
        ]
    return out


def bgp(states: dict[str, int]) -> list[dict[str, str]]:
    return [
        series("bgp_peer_state", {"job": "snmp-bgp", "instance": "astrid", "peer": p}, f"{s}x30")
        for p, s in states.items()
    ]


def bird(states: dict[tuple[str, str], str]) -> list[dict[str, str]]:
    """The BGP exporter's ``bird_protocol_up`` on each node (``instance``) for each of its
    protocols, with the labels bird_exporter 1.4.1 gives (``-format.new``): ``state`` is
    BIRD's info column, the value 1 when BIRD says the protocol is up."""
    out = []
    for (node, name), state in states.items():
        labels = {"job": "bird", "instance": node, "name": name, "proto": "BGP"}
        labels |= {"ip_version": "4", "import_filter": "ACCEPT"}
        labels |= {"export_filter": "calico_export_to_bgp_peers", "state": state}
        out.append(series("bird_protocol_up", labels, "1x30" if state == "Established" else "0x30"))
    # Not a BGP session: never matched.
    kernel = {"job": "bird", "instance": "fohn", "name": "kernel1", "proto": "Kernel", "state": ""}
    return [*out, series("bird_protocol_up", kernel, "1x30")]


# Every session the reference inventory implies, from each node's side.
SESSIONS = {(s.node, s.protocol): s for s in topology.sessions(reference())}
ESTABLISHED = dict.fromkeys(SESSIONS, "Established")
# fohn's mesh session with chequita is Active; wind's BIRD has no kek-core session at all.
ACTIVE = ("fohn", "Mesh_31_31_164_221")
GONE = ("wind", "Global_31_31_164_210")


def bird_fires(key: tuple[str, str]) -> dict[str, Any]:
    s = SESSIONS[key]
    alert = "CalicoBgpSessionNotEstablished"
    said = next(
        r["annotations"]["runbook"]
        for r in m.alert_rules(reference())["groups"][0]["rules"]
        if r["alert"] == alert and r["labels"].get("protocol") == s.protocol
        and r["labels"]["instance"] == s.node
    )  # fmt: skip
    assert s.node in said and s.protocol in said
    return {
        "exp_labels": {
            "severity": "warning", "instance": s.node, "protocol": s.protocol, "peer": s.peer,
        },
        "exp_annotations": {
            "summary": f"{s.node}'s BGP session {s.protocol} with {s.peer} ({s.peer_address}) "
            "is not Established",
            "runbook": said,
        },
    }  # fmt: skip


CASES: dict[str, tuple[list[dict[str, str]], list[dict[str, Any]], list[dict[str, str]]]] = {
    "CalicoBgpSessionNotEstablished": (
        bird({k: v for k, v in ESTABLISHED.items() if k != GONE} | {ACTIVE: "Active"}),
        [bird_fires(ACTIVE), bird_fires(GONE)],
        bird(ESTABLISHED),
    ),
    # alert: (series that make it fire, the alerts expected, series that keep it quiet)
    "EtcdQuorumAtRisk": (
        up("etcd", {"fohn": "1x30", "chequita": "1x30", "wind": "0x30"}),
        [
            fires(
                "EtcdQuorumAtRisk",
                {"severity": "critical"},
                "etcd: 2 of 3 members in quorum; quorum needs 2, one more failure loses it",
            )
        ],
        up("etcd", dict.fromkeys(SERVERS, "1x30")),
    ),
    "CephMonQuorumAtRisk": (
        [
            series("ceph_mon_quorum_status", {"ceph_daemon": f"mon.{s}"}, v)
            for s, v in zip(SERVERS, ("1x30", "0x30", "1x30"), strict=True)
        ],
        [
            fires(
                "CephMonQuorumAtRisk",
                {"severity": "critical"},
                "Ceph monitor: 2 of 3 members in quorum; quorum needs 2, one more failure loses it",
            )
        ],
        [series("ceph_mon_quorum_status", {"ceph_daemon": f"mon.{s}"}, "1x30") for s in SERVERS],
    ),
    "CephOsdDown": (
        osds(down=1),
        [fires("CephOsdDown", {"severity": "warning"}, "15 of the inventory's 16 OSDs are up")],
        osds(down=0),
    ),
    "CephPoolBelowMinSize": (
        pools(active_rbd=1000),
        [
            fires(
                "CephPoolBelowMinSize",
                {"severity": "critical", "pool": "rbd", "pool_id": "1", "name": "rbd"},
                "pool rbd: 24 placement groups inactive: fewer than min_size 2 of its 3 "
                "copies are up; I/O to it blocks",
            )
        ],
        pools(active_rbd=1024),
    ),
    "BmcNotAnswering": (
        [
            *up("ipmi", {"fohn": "1x30", "chequita": "1x30", "wind": "0x30"}),
            series("ipmi_up", {"job": "ipmi", "instance": "fohn", "collector": "bmc"}, "0x30"),
        ],
        [
            fires(
                "BmcNotAnswering",
                {"severity": "warning", "job": "ipmi", "instance": "fohn", "collector": "bmc"},
                "fohn's BMC does not answer IPMI",
            ),
            fires(
                "BmcNotAnswering",
                {"severity": "warning", "job": "ipmi", "instance": "wind"},
                "wind's BMC does not answer IPMI",
            ),
        ],
        [
            *up("ipmi", dict.fromkeys(SERVERS, "1x30")),
            series("ipmi_up", {"job": "ipmi", "instance": "fohn", "collector": "bmc"}, "1x30"),
            # A BMC without sensor records (the simulated lab's) answers all the same.
            series("ipmi_up", {"job": "ipmi", "instance": "fohn", "collector": "ipmi"}, "0x30"),
        ],
    ),
    "PduNotAnswering": (
        up("snmp-pdu", {"pdu1": "1x30", "pdu2": "0x30"}),
        [
            fires(
                "PduNotAnswering",
                {"severity": "warning", "job": "snmp-pdu", "instance": "pdu2"},
                "PDU pdu2 does not answer SNMP",
            )
        ],
        up("snmp-pdu", {"pdu1": "1x30", "pdu2": "1x30"}),
    ),
    "PduBankNearRatedLoad": (
        [
            series("pdu_bank_current_deciamps", {"job": "snmp-pdu", "instance": "pdu1"}, "95x30"),
            series("pdu_bank_threshold_deciamps", {"job": "snmp-pdu", "instance": "pdu1"}, "90x30"),
            series(
                "pdu_bank_load_state", {"job": "snmp-pdu", "instance": "apc", "bank": "1"}, "3x30"
            ),
        ],
        [
            fires(
                "PduBankNearRatedLoad",
                {"severity": "warning", "job": "snmp-pdu", "instance": "apc", "bank": "1"},
                "PDU apc is near its rated load",
            ),
            fires(
                "PduBankNearRatedLoad",
                {"severity": "warning", "job": "snmp-pdu", "instance": "pdu1"},
                "PDU pdu1 is near its rated load",
            ),
        ],
        [
            series("pdu_bank_current_deciamps", {"job": "snmp-pdu", "instance": "pdu1"}, "50x30"),
            series("pdu_bank_threshold_deciamps", {"job": "snmp-pdu", "instance": "pdu1"}, "90x30"),
            # A threshold of 0 is one never set: no alert whatever the load.
            series("pdu_bank_current_deciamps", {"job": "snmp-pdu", "instance": "pdu2"}, "50x30"),
            series("pdu_bank_threshold_deciamps", {"job": "snmp-pdu", "instance": "pdu2"}, "0x30"),
            series(
                "pdu_bank_load_state", {"job": "snmp-pdu", "instance": "apc", "bank": "1"}, "2x30"
            ),
        ],
    ),
    "BgpSessionNotEstablished": (
        # chequita's session is Active (3); wind's is missing from the switch altogether.
        bgp({"31.31.164.220": 6, "31.31.164.221": 3}),
        [
            fires(
                "BgpSessionNotEstablished",
                {
                    "severity": "warning",
                    "node": "chequita",
                    "job": "snmp-bgp",
                    "instance": "astrid",
                    "peer": "31.31.164.221",
                },
                "astrid's BGP session with chequita (31.31.164.221) is not Established",
            ),
            fires(
                "BgpSessionNotEstablished",
                {
                    "severity": "warning",
                    "node": "wind",
                    "job": "snmp-bgp",
                    "instance": "astrid",
                    "peer": "31.31.164.222",
                },
                "astrid's BGP session with wind (31.31.164.222) is not Established",
            ),
        ],
        bgp({"31.31.164.220": 6, "31.31.164.221": 6, "31.31.164.222": 6}),
    ),
    "NodeDown": (
        up("node", {"fohn": "1x30", "chequita": "0x30", "wind": "1x30"}),
        [
            fires(
                "NodeDown",
                {"severity": "critical", "job": "node", "instance": "chequita"},
                "chequita does not answer (node-exporter down)",
            )
        ],
        up("node", dict.fromkeys(SERVERS, "1x30")),
    ),
    "NodeNotReady": (
        up("kubelet", {"fohn": "1x30", "chequita": "1x30", "wind": "0x30"}),
        [
            fires(
                "NodeNotReady",
                {"severity": "critical", "job": "kubelet", "instance": "wind"},
                "wind's kubelet does not answer: the node goes NotReady",
            )
        ],
        up("kubelet", dict.fromkeys(SERVERS, "1x30")),
    ),
    "LabctlCertificateExpiring": (
        [
            series(
                "labctl_certificate_not_after_seconds",
                {**CERT, "certificate": "apiserver", "path": "/etc/kubernetes/ssl/apiserver.pem"},
                f"{20 * DAY}x30",
            ),
            series(
                "labctl_certificate_not_after_seconds",
                {
                    **CERT,
                    "certificate": "kubelet-fohn",
                    "path": "/etc/kubernetes/ssl/kubelet-fohn.pem",
                },
                f"{60 * DAY}x30",
            ),
        ],
        [
            fires(
                "LabctlCertificateExpiring",
                {
                    "severity": "warning",
                    **CERT,
                    "certificate": "apiserver",
                    "path": "/etc/kubernetes/ssl/apiserver.pem",
                },
                "certificate apiserver (/etc/kubernetes/ssl/apiserver.pem) on fohn expires "
                "within 30 days",
            )
        ],
        [
            series(
                "labctl_certificate_not_after_seconds",
                {**CERT, "certificate": "apiserver", "path": "/etc/kubernetes/ssl/apiserver.pem"},
                f"{60 * DAY}x30",
            )
        ],
    ),
}


def test_every_rule_has_a_case() -> None:
    rendered = {r["alert"] for r in m.alert_rules(reference())["groups"][0]["rules"]}
    assert rendered == set(CASES)


@pytest.mark.parametrize("alert", sorted(CASES))
def test_promtool_test_rules(alert: str, tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(m.dump(m.alert_rules(reference())))
    firing, expected, quiet = CASES[alert]
    tests = [
        {
            "interval": "1m",
            "input_series": firing,
            "alert_rule_test": [{"eval_time": "15m", "alertname": alert, "exp_alerts": expected}],
        },
        {
            "interval": "1m",
            "input_series": quiet,
            "alert_rule_test": [{"eval_time": "15m", "alertname": alert, "exp_alerts": []}],
        },
    ]
    doc = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    done = run(program("promtool"), "test", "rules", str(tmp_path / "test.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


# -- dashboards ------------------------------------------------------------------

# The fields Grafana's dashboard kind documents as required, and the constraints it
# states (docs/sources/developers/kinds/core/dashboard/schema-reference.md in
# grafana/grafana): Grafana publishes the kind as CUE, not JSON Schema, so this is
# written from that page, not copied.
_TARGET = {
    "type": "object",
    "required": ["refId"],
    "properties": {"refId": {"type": "string"}, "expr": {"type": "string", "minLength": 1}},
}
_PANEL = {
    "type": "object",
    "required": ["type", "title", "gridPos", "datasource", "targets", "id"],
    "properties": {
        "type": {"type": "string", "minLength": 1},
        "id": {"type": "integer", "minimum": 1},
        "gridPos": {
            "type": "object",
            "required": ["h", "w", "x", "y"],
            "properties": {
                "h": {"type": "integer", "minimum": 1},
                "w": {"type": "integer", "minimum": 1, "maximum": 24},
                "x": {"type": "integer", "minimum": 0, "maximum": 23},
                "y": {"type": "integer", "minimum": 0},
            },
        },
        "datasource": {
            "type": "object",
            "properties": {"type": {"type": "string"}, "uid": {"type": "string"}},
        },
        "targets": {"type": "array", "minItems": 1, "items": _TARGET},
    },
}
DASHBOARD_KIND = {
    "type": "object",
    "required": ["schemaVersion", "title", "uid", "panels"],
    "properties": {
        "schemaVersion": {"type": "integer", "minimum": 36, "maximum": 65535},
        "uid": {"type": "string", "minLength": 8, "maxLength": 40},
        "graphTooltip": {"enum": [0, 1, 2]},
        "editable": {"type": "boolean"},
        "timezone": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "time": {
            "type": "object",
            "required": ["from", "to"],
            "properties": {"from": {"type": "string"}, "to": {"type": "string"}},
        },
        "panels": {"type": "array", "minItems": 1, "items": _PANEL},
    },
}


def test_dashboards_have_what_grafanas_dashboard_kind_requires() -> None:
    found = m.dashboards(reference())
    for doc in found.values():
        jsonschema.validate(doc, DASHBOARD_KIND)
        ids = [p["id"] for p in doc["panels"]]
        assert len(ids) == len(set(ids))
    uids = [doc["uid"] for doc in found.values()]
    assert len(uids) == len(set(uids))


def test_the_kind_check_refuses_a_panel_without_a_position() -> None:
    doc = m.dashboards(reference())["etcd"]
    del doc["panels"][0]["gridPos"]["w"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, DASHBOARD_KIND)


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    # promtool checks PromQL only inside rule files: each query becomes a recording rule.
    exprs = [
        target["expr"]
        for doc in m.dashboards(reference()).values()
        for panel in doc["panels"]
        for target in panel["targets"]
    ]
    rules = [{"record": f"labctl:dashboard_query_{i}", "expr": e} for i, e in enumerate(exprs)]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    done = run(program("promtool"), "check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in done.stdout


def test_alert_for_from_the_inventory_is_what_prometheus_waits(tmp_path: Path) -> None:
    """``alert_for: {NodeDown: 10s}`` (the e2e test's inventory): evaluated every 5 s by
    promtool, wind's node-exporter down from 5 s on is pending at 10 s and firing at
    15 s, where the rule's own 1m would still be pending."""
    inv = with_alert_for(tmp_path)
    (tmp_path / "rules.yml").write_text(m.dump(m.alert_rules(inv)))
    wind = up("node", {"fohn": "1x12", "wind": "1 0x11"})
    node_down = fires(
        "NodeDown",
        {"severity": "critical", "job": "node", "instance": "wind"},
        "wind does not answer (node-exporter down)",
    )
    quorum = fires(
        "EtcdQuorumAtRisk",
        {"severity": "critical"},
        "etcd: 2 of 3 members in quorum; quorum needs 2, one more failure loses it",
    )
    etcd = up("etcd", {"fohn": "1x12", "chequita": "1x12", "wind": "1 0x11"})
    checks = [
        {"eval_time": "10s", "alertname": "NodeDown", "exp_alerts": []},
        {"eval_time": "15s", "alertname": "NodeDown", "exp_alerts": [node_down]},
        {"eval_time": "0s", "alertname": "EtcdQuorumAtRisk", "exp_alerts": []},
        {"eval_time": "5s", "alertname": "EtcdQuorumAtRisk", "exp_alerts": [quorum]},
    ]
    test = {"interval": "5s", "input_series": wind + etcd, "alert_rule_test": checks}
    doc = {"rule_files": ["rules.yml"], "evaluation_interval": "5s", "tests": [test]}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    done = run(program("promtool"), "test", "rules", str(tmp_path / "test.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
