from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from labctl.pki.cfssl_json import ca_config, csr_json, dumps, go_duration
from labctl.pki.specs import plan_certificates
from tests.pki_sample import sample_input

GOLDEN = Path(__file__).resolve().parents[2] / "fixtures" / "pki"


def test_full_set_of_names() -> None:
    names = [s.name for s in plan_certificates(sample_input())]
    assert names[:2] == ["ca", "front-proxy-ca"]  # CAs first: leaves need them
    for n in ("fohn", "chequita", "wind"):
        assert f"etcd-server-{n}" in names and f"etcd-peer-{n}" in names
        assert f"kubelet-{n}" in names and f"kubelet-client-{n}" in names
    for n in (
        "etcd-client-apiserver",
        "etcd-client-bluecmd",
        "apiserver",
        "admin",
        "kube-controller-manager",
        "kube-scheduler",
        "kube-proxy",
        "front-proxy-client",
    ):
        assert n in names
    assert len(names) == len(set(names))


def test_etcd_certs_have_both_auth_usages() -> None:
    specs = plan_certificates(sample_input())
    for s in specs:
        if s.name.startswith(("etcd-server-", "etcd-peer-")):
            assert {"server auth", "client auth"} <= set(s.usages), s.name
    peer = next(s for s in specs if s.name == "etcd-peer-chequita")
    assert set(peer.hosts) == {"chequita", "chequita.lab", "31.31.164.210"}
    assert peer.owner_nodes == ("chequita",)


def test_apiserver_sans() -> None:
    api = next(s for s in plan_certificates(sample_input()) if s.name == "apiserver")
    for h in (
        "10.3.0.1",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "k8s.lab.example",
        "31.31.164.209",
        "fohn",
        "fohn.lab",
    ):
        assert h in api.hosts
    assert "chequita" not in api.hosts  # not a control-plane node
    assert api.usages == ("signing", "key encipherment", "server auth")


def test_identities() -> None:
    s = {x.name: x for x in plan_certificates(sample_input())}
    assert s["kubelet-client-wind"].common_name == "system:node:wind"
    assert s["kubelet-client-wind"].organizations == ("system:nodes",)
    assert s["admin"].organizations == ("system:masters",)
    assert s["kube-controller-manager"].common_name == "system:kube-controller-manager"
    assert s["kube-scheduler"].common_name == "system:kube-scheduler"
    assert s["kube-proxy"].common_name == "system:kube-proxy"
    assert s["front-proxy-client"].ca == "front-proxy-ca"
    assert s["etcd-client-bluecmd"].usages[-1] == "client auth"


def test_go_duration() -> None:
    assert go_duration(365) == "8760h"
    assert go_duration(3650) == "87600h"


def rendered() -> dict[str, str]:
    inp = sample_input()
    out = {"ca-config.json": dumps(ca_config(inp))}
    out.update({f"{s.name}.json": dumps(csr_json(s)) for s in plan_certificates(inp)})
    return out


def test_render_is_deterministic() -> None:
    assert rendered() == rendered()


@pytest.mark.parametrize("filename", sorted(rendered()))
def test_golden(filename: str) -> None:
    # LABCTL_UPDATE_GOLDEN=1 rewrites the fixtures; review the diff before committing.
    text = rendered()[filename]
    path = GOLDEN / filename
    if os.environ.get("LABCTL_UPDATE_GOLDEN"):
        path.write_text(text)
    assert json.loads(path.read_text()) == json.loads(text)
    assert path.read_text() == text


def test_no_stray_golden_files() -> None:
    assert {p.name for p in GOLDEN.glob("*.json")} == set(rendered())
