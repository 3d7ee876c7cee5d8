"""Building etcd at the inventory's version: the module labctl generates (go install
refuses etcd's server module, whose go.mod replaces its siblings with ../ paths), and
the refusals, against a loopback module proxy (tests/peers/goproxy.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.errors import LabctlError, UsageError
from labctl.etcd import build as b
from labctl.etcd import builder
from tests.labctl_process import run_labctl
from tests.peers import goproxy

# Cut from go.etcd.io/etcd/server/v3@v3.5.21's and etcdctl/v3@v3.5.21's go.mod.
SERVER = """module go.etcd.io/etcd/server/v3

go 1.23.0

require (
\tgo.etcd.io/etcd/api/v3 v3.5.21
\tgo.etcd.io/etcd/client/v2 v2.305.21
\tgo.etcd.io/etcd/raft/v3 v3.5.21
\tgolang.org/x/net v0.38.0
)

replace (
\tgo.etcd.io/etcd/api/v3 => ../api
\tgo.etcd.io/etcd/client/v2 => ../client/v2
\tgo.etcd.io/etcd/raft/v3 => ../raft
)

// Bad imports are sometimes causing attempts to pull that code.
replace (
\tgo.etcd.io/etcd => ./FORBIDDEN_DEPENDENCY
)
"""
ETCDCTL = """module go.etcd.io/etcd/etcdctl/v3

go 1.22

require (
\tgo.etcd.io/etcd/etcdutl/v3 v3.5.21
\tgo.etcd.io/etcd/server/v3 v3.5.21
)

replace (
\tgo.etcd.io/etcd/etcdutl/v3 => ../etcdutl
\tgo.etcd.io/etcd/server/v3 => ../server
)
"""


def test_tags() -> None:
    assert b.tag("3.5.21") == b.tag("v3.5.21") == "v3.5.21"
    with pytest.raises(UsageError, match=r"'4\.0\.0' is not an etcd 3 release"):
        b.tag("4.0.0")


def test_the_generated_go_mod_pins_every_sibling_at_the_version_its_go_mod_requires() -> None:
    assert b.siblings("v3.5.21", [SERVER, ETCDCTL]) == {
        "go.etcd.io/etcd/api/v3": "v3.5.21",
        "go.etcd.io/etcd/client/v2": "v2.305.21",  # not v3.5.21: client/v2's own tag
        "go.etcd.io/etcd/etcdutl/v3": "v3.5.21",
        "go.etcd.io/etcd/raft/v3": "v3.5.21",
        "go.etcd.io/etcd/server/v3": "v3.5.21",
    }
    lines = b.go_mod("v3.5.21", [SERVER, ETCDCTL]).splitlines()
    assert "go 1.23.0" in lines  # the newer of the two
    assert "\tgo.etcd.io/etcd/server/v3 v3.5.21" in lines
    assert "\tgo.etcd.io/etcd/etcdctl/v3 v3.5.21" in lines
    assert "\tgo.etcd.io/etcd/client/v2 => go.etcd.io/etcd/client/v2 v2.305.21" in lines
    assert not any("FORBIDDEN" in line for line in lines)
    assert '_ "go.etcd.io/etcd/server/v3"' in b.tools_go()


def test_a_version_the_proxy_does_not_serve_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABCTL_ETCD_CACHE", str(tmp_path / "cache"))
    said: list[str] = []
    with goproxy.serving("v3.5.21\n", modules=(b.SERVER, b.ETCDCTL)) as (url, _):
        monkeypatch.setenv("GOPROXY", url)
        with pytest.raises(
            LabctlError, match=r"does not serve go\.etcd\.io/etcd/server/v3 v3\.5\.99"
        ):
            builder.build("v3.5.99", said.append)
    assert not (tmp_path / "cache" / ".work" / "v3.5.99").exists()


def test_a_built_version_costs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABCTL_ETCD_CACHE", str(tmp_path))
    monkeypatch.setenv("GOPROXY", "off")  # asking would fail: nothing is asked
    (tmp_path / "v3.5.21" / "bin").mkdir(parents=True)
    for name in b.BINARIES:
        (tmp_path / "v3.5.21" / "bin" / name).write_text("")
    said: list[str] = []
    assert builder.build("v3.5.21", said.append) == tmp_path / "v3.5.21" / "bin"
    assert said == [f"etcd v3.5.21 is built in {tmp_path / 'v3.5.21'}"]


def test_the_cli() -> None:
    bad = run_labctl("etcd", "build", "--version", "3.5")
    assert bad.returncode == 2
    assert "'3.5' is not an etcd 3 release" in bad.stderr
