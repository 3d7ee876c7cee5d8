"""cluster.monitoring's model and the monitoring renders for the reference lab.

The renders are kept as golden files (tests/fixtures/golden/monitoring/); the
real programs check them in test_monitoring_tools.py. Receivers are added to the
reference inventory's text here, as an operator would.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from labctl.drivers.pdu_profiles import profile_for
from labctl.inventory import load_inventory, require_inventory
from labctl.inventory.model import Inventory, Pdu, SecretRef
from labctl.inventory.schema import schema
from labctl.render import monitoring as m
from labctl.render.monitoring.targets import targets
from tests.conftest import REFERENCE, assert_golden

RECEIVERS = """  monitoring:
    servers: [fohn, wind]
    scrape_interval: 15s
    receivers:
      - name: ops-hook
        type: webhook
        url: https://hooks.lab.example.net/alerts
        token: {env: LABCTL_ALERT_TOKEN}
      - name: ops-mail
        type: email
        address: ops@lab.example.net
        smarthost: smtp.lab.example.net:587
        password: {file: secrets/smtp-password}
"""


def reference() -> Inventory:
    return require_inventory(REFERENCE)


def with_receivers(tmp_path: Path) -> Inventory:
    path = tmp_path / "inventory.yaml"
    path.write_text(REFERENCE.read_text() + RECEIVERS)
    return require_inventory(path)


def stand_in(ref: SecretRef) -> str:
    return f"<{ref.describe()}>"


def profile(pdu: Pdu) -> m.snmp.Profile:
    return profile_for(pdu.profile, pdu.custom_profile)


def test_an_absent_section_takes_the_schema_defaults() -> None:
    mon = reference().cluster.monitoring
    assert (mon.servers, mon.operator, mon.retention, mon.scrape_interval, mon.receivers) == (
        (),
        False,
        "15d",
        "30s",
        (),
    )


def test_receivers_keep_their_secrets_as_references(tmp_path: Path) -> None:
    mon = with_receivers(tmp_path).cluster.monitoring
    assert mon.servers == ("fohn", "wind")
    hook, mail = mon.receivers
    assert (hook.type, hook.secret) == ("webhook", SecretRef(env="LABCTL_ALERT_TOKEN"))
    assert (mail.type, mail.secret) == ("email", SecretRef(file="secrets/smtp-password"))


def test_a_receiver_secret_written_in_the_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(
        REFERENCE.read_text() + RECEIVERS.replace("{env: LABCTL_ALERT_TOKEN}", "s3cret")
    )
    result = load_inventory(path)
    found = [(p.check_id, p.position.line if p.position else 0) for p in result.problems]
    line = path.read_text().splitlines().index("        token: s3cret") + 1
    assert ("LAB060", line) in found
    assert all("s3cret" not in p.message for p in result.problems)


def test_every_implied_target_once() -> None:
    found = [(t.job, t.instance) for t in targets(reference())]
    assert len(found) == len(set(found))
    servers = ["fohn", "chequita", "wind"]
    for job in ("node", "ipmi", "kubelet"):
        assert [i for j, i in found if j == job] == servers
    assert [i for j, i in found if j == "snmp-pdu"] == ["pdu1", "pdu2"]
    # kek-core's BGP is read over SSH (FRR) and tor has no session: only astrid's via SNMP.
    assert [i for j, i in found if j == "snmp-bgp"] == ["astrid"]
    assert [i for j, i in found if j == "prometheus"] == ["fohn"]  # the control plane


def test_prometheus_golden() -> None:
    assert_golden("monitoring/prometheus.yml", m.dump(m.prometheus_config(reference())))


def test_rules_golden() -> None:
    assert_golden("monitoring/rules.yml", m.dump(m.alert_rules(reference())))


def test_alertmanager_golden(tmp_path: Path) -> None:
    assert_golden(
        "monitoring/alertmanager.yml", m.dump(m.alertmanager_config(with_receivers(tmp_path)))
    )


def test_snmp_golden() -> None:
    doc = m.snmp_config(reference(), profile, stand_in)
    assert_golden("monitoring/snmp.yml", m.dump(doc))


def test_rbac_golden() -> None:
    assert_golden("monitoring/rbac.yaml", yaml.safe_dump_all(m.rbac(), sort_keys=False))


def test_alertmanager_names_secret_files_never_values(tmp_path: Path) -> None:
    text = m.dump(m.alertmanager_config(with_receivers(tmp_path)))
    assert "LABCTL_ALERT_TOKEN" not in text and "smtp-password" not in text
    doc = yaml.safe_load(text)
    hook = doc["receivers"][1]["webhook_configs"][0]["http_config"]["authorization"]
    assert hook == {
        "type": "Bearer",
        "credentials_file": "/etc/prometheus/alertmanager-secrets/ops-hook-token",
    }
    mail = doc["receivers"][2]["email_configs"][0]
    assert mail["auth_password_file"] == "/etc/prometheus/alertmanager-secrets/ops-mail-password"
    assert "auth_password" not in mail


def test_rules_count_what_the_inventory_has() -> None:
    rules = {r["alert"]: r for r in m.alert_rules(reference())["groups"][0]["rules"]}
    # 3 etcd members: quorum 2, so 2 up is one failure from lost.
    assert rules["EtcdQuorumAtRisk"]["expr"] == '(sum(up{job="etcd"}) or vector(0)) <= 2'
    assert rules["CephOsdDown"]["expr"] == "(sum(ceph_osd_up) or vector(0)) < 16"


ALERT_FOR = """  monitoring:
    alert_for: {NodeDown: 10s, EtcdQuorumAtRisk: 0s}
"""


def with_alert_for(tmp_path: Path) -> Inventory:
    path = tmp_path / "inventory.yaml"
    path.write_text(REFERENCE.read_text() + ALERT_FOR)
    return require_inventory(path)


def test_alert_for_replaces_the_named_rules_for(tmp_path: Path) -> None:
    inv = with_alert_for(tmp_path)
    assert inv.cluster.monitoring.alert_for == (("EtcdQuorumAtRisk", "0s"), ("NodeDown", "10s"))
    rules = {r["alert"]: r["for"] for r in m.alert_rules(inv)["groups"][0]["rules"]}
    assert (rules["NodeDown"], rules["EtcdQuorumAtRisk"]) == ("10s", "0s")
    own = {r["alert"]: r["for"] for r in m.alert_rules(reference())["groups"][0]["rules"]}
    assert {k: v for k, v in rules.items() if k not in ("NodeDown", "EtcdQuorumAtRisk")} == {
        k: v for k, v in own.items() if k not in ("NodeDown", "EtcdQuorumAtRisk")
    }


def test_alert_for_names_exactly_the_rendered_alerts() -> None:
    """The schema's closed set of alert names is the set the reference lab (which has
    every kind: Ceph, PDUs, a BGP-reading switch) renders: a rule added or renamed
    without the schema fails here."""
    node = schema()["$defs"]["cluster"]["properties"]["monitoring"]["properties"]["alert_for"]
    rendered = {r["alert"] for r in m.alert_rules(reference())["groups"][0]["rules"]}
    assert set(node["propertyNames"]["enum"]) == rendered


def test_dashboards_golden() -> None:
    found = m.dashboards(reference())
    assert list(found) == ["power", "bgp", "etcd", "ceph", "nodes"]
    for area, doc in found.items():
        assert_golden(f"monitoring/dashboard-{area}.json", json.dumps(doc, indent=2) + "\n")


def test_dashboards_draw_the_inventory() -> None:
    found = m.dashboards(reference())
    power = {p["title"]: p for p in found["power"]["panels"]}
    assert "outlet 1: fohn PSU 1" in power["pdu1 (Digipower SWH-1023J-08N1)"]["description"]
    etcd = {p["title"]: p for p in found["etcd"]["panels"]}
    assert etcd["Members up"]["description"] == "3 members; quorum needs 2."
    bgp, *nodes = found["bgp"]["panels"]
    assert bgp["title"] == "astrid BGP sessions" and "wind 31.31.164.222" in bgp["description"]
    # Then each node's side, from its BGP exporter, naming the sessions as calico-node does.
    assert [p["title"] for p in nodes] == [
        f"{s} BGP sessions (calico-node's BIRD)" for s in ("fohn", "chequita", "wind")
    ]
    assert "Mesh_31_31_164_222 (wind)" in nodes[0]["description"]
    assert (
        nodes[0]["targets"][0]["expr"]
        == 'bird_protocol_up{job="bird", instance="fohn", proto="BGP"}'
    )


def test_operator_runs_prometheus_and_alertmanager_locally(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(REFERENCE.read_text() + "  monitoring:\n    operator: true\n")
    doc = m.prometheus_config(require_inventory(path), m.OPERATOR_PATHS)
    assert doc["alerting"]["alertmanagers"] == [
        {"static_configs": [{"targets": ["127.0.0.1:9093"]}]}
    ]
    jobs = {j["job_name"]: j for j in doc["scrape_configs"]}
    assert jobs["prometheus"]["static_configs"] == [
        {"targets": ["127.0.0.1:9090"], "labels": {"instance": "operator"}}
    ]
    assert (
        jobs["etcd"]["tls_config"]["cert_file"] == ".labctl/monitoring/etcd-client-prometheus.pem"
    )


def test_operator_and_servers_together_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(
        REFERENCE.read_text() + "  monitoring:\n    operator: true\n    servers: [fohn]\n"
    )
    found = [(p.check_id, p.path_text) for p in load_inventory(path).problems]
    assert ("LAB130", "cluster.monitoring.operator") in found


def test_retention_is_a_flag() -> None:
    assert m.prometheus_flags(reference()) == [
        "--config.file=/etc/prometheus/prometheus.yml",
        "--storage.tsdb.retention.time=15d",
    ]
