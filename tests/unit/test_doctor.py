"""`labctl doctor`: each check's verdict on gathered answers, the gathering's pure parts,
and the command's formats and exit codes, without a lab.

The verdicts are pure (labctl/doctor/checks.py), so every way a check can find a
device unfit is shown here with made answers; the e2e test
(tests/e2e/test_sim_lab_doctor.py) shows the same checks reading the real peers.
The command runs here only on checks that ask nothing on the network (the PKI
store, and services whose layer never ran), against a tmp copy of the reference lab.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from labctl.cli.main import app
from labctl.doctor import checks
from labctl.doctor.checks import (
    Answers,
    BmcAnswer,
    Bounds,
    CertAnswer,
    DiskAnswer,
    DnsAnswer,
    NodeAnswer,
    PduAnswer,
    ServiceAnswer,
    Severity,
)
from labctl.doctor.gather import (
    Silent,
    ask_all,
    bmc_answers,
    data_paths,
    dns_names,
    layers_run,
    parse_df,
    pdu_answers,
    service_jobs,
)
from labctl.errors import (
    AuthenticationError,
    DriverTimeout,
    InsecureProtocolError,
    SecretError,
)
from labctl.inventory import require_inventory
from labctl.platform import RealPlatform
from tests.conftest import REFERENCE
from tests.labctl_process import run_labctl
from tests.unit.test_validate_formats import _junit_schema

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
BOUNDS = Bounds()
runner = CliRunner()


def ids(findings: list[checks.Finding]) -> list[tuple[str, str, str]]:
    return [(f.check_id, str(f.severity), f.subject) for f in findings]


# -- BMCs ---------------------------------------------------------------------------


def test_a_silent_bmc_is_an_error_naming_why() -> None:
    found = checks.bmc_findings(
        [BmcAnswer("wind", "ipmi", None, error="no answer within 2 s")], {"wind": (17, 3)}
    )
    assert ids(found) == [("DOC001", "error", "wind")]
    assert "wind's BMC does not answer: no answer within 2 s" in found[0].sentence


def test_a_bmc_refusing_17_but_taking_3_says_so_as_a_warning() -> None:
    answer = BmcAnswer("fohn", "ipmi", "ipmi", suites={17: "refused by the BMC", 3: None})
    found = checks.bmc_findings([answer], {"fohn": (17, 3)})
    assert ids(found) == [("DOC002", "warning", "fohn")]
    assert "refuses cipher suite(s) 17 but takes 3" in found[0].sentence


def test_a_bmc_taking_none_of_its_suites_is_an_error() -> None:
    answer = BmcAnswer("fohn", "ipmi", "ipmi", suites={17: "refused by the BMC", 3: "refused"})
    found = checks.bmc_findings([answer], {"fohn": (17, 3)})
    assert ids(found) == [("DOC002", "error", "fohn")]
    assert "accepts none of cipher suites 17, 3" in found[0].sentence


def test_a_bmc_taking_every_suite_it_is_asked_is_fine() -> None:
    answer = BmcAnswer("fohn", "ipmi", "ipmi", suites={17: None, 3: None})
    assert checks.bmc_findings([answer], {"fohn": (17, 3)}) == []


def test_a_bmc_speaking_the_other_protocol_says_which() -> None:
    answer = BmcAnswer("wind", "ipmi", "redfish", error="no answer")
    found = checks.bmc_findings([answer], {})
    assert ids(found) == [("DOC001", "error", "wind")]
    assert "speaks Redfish, not the IPMI 2.0 its bmc.type says" in found[0].sentence


def test_probe_results_become_answers_refusals_apart_from_silence() -> None:
    inv = require_inventory(REFERENCE)
    refused = InsecureProtocolError(
        "fohn BMC (10.31.0.11:623): the BMC accepted none of cipher suites 17; it may offer "
        "only suites without integrity (such as 0), which labctl refuses"
    )
    results = {
        "bmc:fohn:17": refused,
        "bmc:fohn:3": "on",
        "bmc:fohn:other": False,
        "bmc:chequita:17": AuthenticationError("chequita BMC: the BMC refused user 'labctl'"),
        "bmc:chequita:3": AuthenticationError("chequita BMC: the BMC refused user 'labctl'"),
        "bmc:wind:17": DriverTimeout("wind BMC: no answer"),
        "bmc:wind:3": Silent("no answer within 2 s"),
        "bmc:wind:other": True,
    }
    by_name = {a.server: a for a in bmc_answers(inv, results)}
    assert by_name["fohn"].speaks == "ipmi"
    assert by_name["fohn"].suites == {17: "refused by the BMC", 3: None}
    # A wrong password is an answer: the BMC is there and speaks IPMI.
    assert by_name["chequita"].speaks == "ipmi" and None not in by_name["chequita"].suites.values()
    # Silent in IPMI, a Redfish service root on its address: it speaks Redfish.
    assert by_name["wind"].speaks == "redfish" and by_name["wind"].error == "wind BMC: no answer"


def test_a_bmc_or_pdu_whose_secret_is_missing_is_not_asked_and_says_so() -> None:
    inv = require_inventory(REFERENCE)
    missing = SecretError("servers[0].bmc.password: environment variable X is not set")
    results: dict[str, object] = {"bmc:fohn:17": missing, "bmc:fohn:3": missing}
    fohn = next(a for a in bmc_answers(inv, results) if a.server == "fohn")
    assert fohn.unasked and fohn.speaks is None
    found = checks.bmc_findings([fohn], {})
    assert found[0].sentence == f"fohn's BMC cannot be asked: {missing}"
    pdus = pdu_answers(inv, {"pdu:pdu1": missing, "pdu:pdu2": "on"})
    assert [f.sentence for f in checks.pdu_findings(pdus)] == [f"pdu1 cannot be asked: {missing}"]


# -- PDUs, nodes ----------------------------------------------------------------------


def test_a_pdu_refusing_the_key_is_told_apart_from_a_silent_one() -> None:
    found = checks.pdu_findings(
        [
            PduAnswer("pdu1", "wrong digest", refused=True),
            PduAnswer("pdu2", "no answer within 2 s"),
            PduAnswer("pdu3"),
        ]
    )
    assert ids(found) == [("DOC010", "error", "pdu1"), ("DOC010", "error", "pdu2")]
    assert found[0].sentence == "pdu1 refuses the configured SNMP security: wrong digest"
    assert "pdu2 does not answer over SNMP" in found[1].sentence


def test_ssh_refused_host_key_and_unreached_node_are_said_apart() -> None:
    found = checks.node_findings(
        [
            NodeAnswer("fohn", "the host key changed", host_key_refused=True),
            NodeAnswer("wind", "connection refused"),
        ],
        BOUNDS,
    )
    assert ids(found) == [("DOC020", "error", "fohn"), ("DOC020", "error", "wind")]
    assert "refuses the host key it offers" in found[0].sentence
    assert "is not reached over SSH" in found[1].sentence


@pytest.mark.parametrize(
    ("offset", "uncertainty", "unfit"),
    [(0.2, 0.01, False), (-3.0, 0.1, True), (1.5, 0.6, False), (5.0, 0.5, True)],
)
def test_a_clock_beyond_the_bound_counting_the_round_trip(
    offset: float, uncertainty: float, unfit: bool
) -> None:
    answer = NodeAnswer("chequita", clock_offset=offset, clock_uncertainty=uncertainty)
    found = checks.node_findings([answer], Bounds(clock_seconds=1.0))
    assert bool(found) is unfit
    if unfit:
        way = "behind" if offset < 0 else "ahead of"
        assert found[0].check_id == "DOC021" and way in found[0].sentence


def test_a_data_path_below_the_free_space_bound() -> None:
    full = DiskAnswer("/var/lib/etcd", "/var", 100 * 1024 * 1024, 3 * 1024 * 1024)
    roomy = DiskAnswer("/", "/", 100 * 1024 * 1024, 50 * 1024 * 1024)
    found = checks.node_findings([NodeAnswer("fohn", disks=(full, roomy))], BOUNDS)
    assert ids(found) == [("DOC022", "error", "fohn")]
    assert "/var/lib/etcd has 3.0 % free (3.0 GiB of 100.0 GiB on /var" in found[0].sentence


def test_df_output_parsed_per_path_asked() -> None:
    text = (
        "Filesystem     1024-blocks     Used Available Capacity Mounted on\n"
        "/dev/vda         264212084 35671912  59829352      38% /\n"
        "/dev/vdb           1000000   990000     10000      99% /var/lib\n"
    )
    assert parse_df(["/", "/var/lib"], text) == (
        DiskAnswer("/", "/", 264212084, 59829352),
        DiskAnswer("/var/lib", "/var/lib", 1000000, 10000),
    )


def test_data_paths_are_etcd_s_on_its_members_only() -> None:
    inv = require_inventory(REFERENCE)
    assert "/var/lib/etcd" in data_paths(inv, inv.server("fohn"))
    assert data_paths(inv, inv.server("fohn"))[:2] == ("/", "/var/lib")


# -- certificates, services, DNS ------------------------------------------------------------


def test_certificates_expired_expiring_and_fine() -> None:
    found = checks.cert_findings(
        [
            CertAnswer("etcd-ca", NOW - dt.timedelta(hours=1)),
            CertAnswer("admin", NOW + dt.timedelta(days=10)),
            CertAnswer("kube-ca", NOW + dt.timedelta(days=300)),
            CertAnswer("not-minted", None),
        ],
        NOW,
        Bounds(cert_window=dt.timedelta(days=30)),
    )
    assert ids(found) == [("DOC030", "error", "etcd-ca"), ("DOC030", "warning", "admin")]
    assert "in 10 day(s) (window 30 days)" in found[1].sentence


def test_services_problems_errors_and_not_run() -> None:
    answers = Answers(
        services=(
            ServiceAnswer("etcd", problems=("member chequita: connection refused",)),
            ServiceAnswer("bgp", error="no switch answered"),
            ServiceAnswer("ceph", not_run="the ceph layer has not run on this lab (journal)"),
            ServiceAnswer("kubernetes"),
        )
    )
    found = checks.verdicts(answers, NOW, BOUNDS)
    assert ids(found) == [("DOC040", "error", "etcd"), ("DOC043", "error", "bgp")]
    assert found[0].sentence == "etcd: member chequita: connection refused"
    assert checks.not_run(answers) == {"DOC042": "the ceph layer has not run on this lab (journal)"}


def test_dns_names_resolving_elsewhere_or_not_at_all() -> None:
    found = checks.dns_findings(
        [
            DnsAnswer("api.x", "192.0.2.1", ("192.0.2.9",), "9.9.9.9"),
            DnsAnswer("fohn.x", "192.0.2.2", resolver="9.9.9.9", error="NXDOMAIN"),
            DnsAnswer("wind.x", "192.0.2.3", ("192.0.2.3",), "9.9.9.9"),
        ]
    )
    assert ids(found) == [("DOC050", "error", "api.x"), ("DOC050", "error", "fohn.x")]
    assert "resolves to 192.0.2.9 on 9.9.9.9, not 192.0.2.1" in found[0].sentence


def test_dns_names_are_the_api_and_the_servers_with_their_network_s_resolvers() -> None:
    inv = require_inventory(REFERENCE)
    names = {name: (address, servers) for name, address, servers in dns_names(inv)}
    assert names["api.sthlm.lab.example.net"] == ("31.31.164.220", ("9.9.9.9", "1.1.1.1"))
    assert names["wind.lab.example.net"] == ("31.31.164.222", ("9.9.9.9", "1.1.1.1"))


def test_services_are_asked_only_once_their_layer_ran(tmp_path: Path) -> None:
    (tmp_path / "journal.jsonl").write_text(
        json.dumps({"key": "k:fohn", "fingerprint": "f", "layer": "etcd: members", "at": 1})
        + "\n{torn"
    )
    assert layers_run(tmp_path) == {"etcd"}
    inv = require_inventory(REFERENCE)
    jobs, skipped = service_jobs(inv, tmp_path, RealPlatform(), 1.0, layers_run(tmp_path))
    assert set(jobs) == {"service:etcd"}
    assert {s.service for s in skipped} == {"kubernetes", "ceph", "bgp", "monitoring"}
    assert all("has not run on this lab" in (s.not_run or "") for s in skipped)


def test_ask_all_leaves_a_hung_ask_behind_at_the_bound() -> None:
    never = threading.Event()
    results = ask_all({"quick": lambda: 42, "hung": never.wait, "fails": lambda: 1 / 0}, 0.5)
    assert results["quick"] == 42
    assert isinstance(results["hung"], Silent) and "within 0.5 s" in str(results["hung"])
    assert isinstance(results["fails"], ZeroDivisionError)
    never.set()


# -- the command ---------------------------------------------------------------------------


def _lab(tmp_path: Path) -> Path:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(REFERENCE.read_text())
    return inventory


def _expired_cert(path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "front-proxy-ca")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2021, 1, 1, tzinfo=dt.UTC))
        .sign(key, hashes.SHA256())
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


LOCAL = ["--only", "DOC030", "--only", "DOC040", "--only", "DOC041", "--only", "DOC042"]


def test_doctor_on_a_lab_never_bootstrapped_is_fit_and_says_what_did_not_run(
    tmp_path: Path,
) -> None:
    inventory = _lab(tmp_path)
    state = ["--state-dir", str(tmp_path / ".labctl")]
    out = runner.invoke(app, ["doctor", "-i", str(inventory), *LOCAL, *state, "-o", "json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["fit"] and doc["findings"] == []
    assert "the etcd layer has not run on this lab" in doc["not_run"]["DOC040"]
    assert doc["not_run"]["DOC001"] == "not selected (--only/--skip)"
    assert not (tmp_path / ".labctl").exists(), "doctor wrote a state directory"


def test_an_expired_certificate_fails_in_every_format(tmp_path: Path) -> None:
    inventory = _lab(tmp_path)
    _expired_cert(tmp_path / "ssl" / "front-proxy-ca.pem")
    base = ["doctor", "-i", str(inventory), *LOCAL, "--state-dir", str(tmp_path / ".labctl")]

    text = runner.invoke(app, base)
    assert text.exit_code == 1, text.output
    assert "DOC030 error: certificate front-proxy-ca expired on 2021-01-01 00:00 UTC" in text.stdout
    assert "fix: labctl pki mint" in text.stdout
    assert "lab not fit: 1 problem(s)" in text.stdout

    github = runner.invoke(app, [*base, "-o", "github"])
    assert github.exit_code == 1
    assert github.stdout.startswith(
        f"::error file={inventory},title=DOC030::certificate front-proxy-ca"
    )

    junit = runner.invoke(app, [*base, "-o", "junit"])
    assert junit.exit_code == 1
    _junit_schema().validate(junit.stdout)
    root = ET.fromstring(junit.stdout)
    cases = {c.get("name", "").split(":")[0]: c for c in root.iter("testcase")}
    assert set(cases) == set(checks.REGISTRY)
    failure = cases["DOC030"].find("failure")
    assert failure is not None and failure.get("type") == "DOC030"
    skipped = cases["DOC001"].find("skipped")
    assert skipped is not None and skipped.get("message") == "not selected (--only/--skip)"
    assert root.get("failures") == "1"


def test_bad_input_is_a_sentence_and_exit_2(tmp_path: Path) -> None:
    missing = run_labctl("doctor", "-i", str(tmp_path / "nowhere.yaml"), cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr == f"labctl: {tmp_path / 'nowhere.yaml'}: no such file\n"

    inventory = _lab(tmp_path)
    unknown = run_labctl("doctor", "-i", str(inventory), "--only", "DOC999", cwd=tmp_path)
    assert unknown.returncode == 2
    assert "labctl: no doctor check DOC999; checks are DOC001" in unknown.stderr
    assert "Traceback" not in unknown.stderr and unknown.stdout == ""


def test_every_check_has_a_fix_and_the_severities_used_are_two() -> None:
    assert all(c.fix and c.summary for c in checks.REGISTRY.values())
    assert set(Severity) == {Severity.ERROR, Severity.WARNING}


def test_monitoring_targets_down_and_alerts_firing_are_doc044_problems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """doctor reads `labctl monitoring status` once the monitoring layer ran (issue 26)."""
    from labctl.monitoring import status

    said = status.Status(
        "http://10.0.0.1:9090",
        targets=[
            status.Target("ceph", "fohn", "down", "connection refused"),
            status.Target("node", "wind", "up"),
            status.Target("snmp-pdu", "pdu1", "missing"),
        ],
        alerts=[status.Alert("NodeDown", "wind", "critical", "2026-12-07T01:00:00Z", "down")],
    )
    monkeypatch.setattr(status, "ask", lambda inv, timeout=5.0: said)
    (tmp_path / "journal.jsonl").write_text(
        json.dumps({"key": "k:fohn", "fingerprint": "f", "layer": "monitoring: servers", "at": 1})
        + "\n"
    )
    inv = require_inventory(REFERENCE)
    jobs, _ = service_jobs(inv, tmp_path, RealPlatform(), 1.0, layers_run(tmp_path))
    assert set(jobs) == {"service:monitoring"}
    answers = Answers(
        services=(ServiceAnswer("monitoring", problems=jobs["service:monitoring"]()),)
    )
    found = checks.verdicts(answers, NOW, BOUNDS)
    assert [f.sentence for f in found] == [
        "monitoring: target ceph/fohn down (connection refused)",
        "monitoring: target snmp-pdu/pdu1 missing",
        "monitoring: alert NodeDown firing on wind",
    ]
    assert {i for i, _, _ in ids(found)} == {"DOC044"}
