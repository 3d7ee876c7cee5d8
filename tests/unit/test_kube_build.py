"""Building Kubernetes at the inventory's version: the generated module, the record, the
messages, and the refusal of a version the module proxy does not serve.

The proxy here is tests/peers/goproxy.py, a tiny HTTP server on loopback that answers
the one request of the GOPROXY protocol labctl makes (``<module>/@v/list``, a public
spec): a fake *proxy*, so the refusal is tested offline; labctl's code runs unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl import gobuild
from labctl.errors import LabctlError, UsageError
from labctl.kubernetes import build as b
from labctl.kubernetes import builder
from tests.conftest import REFERENCE, ROOT
from tests.labctl_process import run_labctl
from tests.peers import goproxy

UPSTREAM = """module k8s.io/kubernetes

go 1.25.0

require (
\tk8s.io/api v0.0.0
\tgithub.com/spf13/cobra v1.10.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go // the client
\tgithub.com/example/fork => github.com/example/fork v1.2.3
)

replace k8s.io/kubectl => ./staging/src/k8s.io/kubectl
"""

SERVED = "v1.34.2\nv1.35.0\nv1.35.4\nv1.36.1\nv1.36.3\nv1.37.2\nv1.38.0-beta.0\n"


def test_release_tags_and_bad_versions() -> None:
    assert b.tag("1.35.4") == "v1.35.4"
    assert b.tag("v1.35.4") == "v1.35.4"
    with pytest.raises(UsageError, match=r"'1\.35' is not a Kubernetes release.*1\.35\.4"):
        b.tag("1.35")
    assert b.staging_version("v1.35.4") == "v0.35.4"


def test_staging_modules_are_the_ones_replaced_by_a_staging_path() -> None:
    assert b.staging_modules(UPSTREAM) == ["k8s.io/api", "k8s.io/client-go", "k8s.io/kubectl"]


def test_the_generated_go_mod_pins_the_release_and_its_staging_modules() -> None:
    text = b.go_mod("v1.35.4", UPSTREAM)
    lines = text.splitlines()
    assert "module labctl.invalid/tools/kubernetes" in lines
    assert "go 1.25.0" in lines  # the release's own Go version, not the pinned one's
    assert "require k8s.io/kubernetes v1.35.4" in lines
    assert "\tk8s.io/api => k8s.io/api v0.35.4" in lines
    assert "\tk8s.io/client-go => k8s.io/client-go v0.35.4" in lines
    assert "\tk8s.io/kubectl => k8s.io/kubectl v0.35.4" in lines
    assert not any("example/fork" in line for line in lines)
    with pytest.raises(ValueError, match="replaces no module"):
        b.go_mod("v1.35.4", "module k8s.io/kubernetes\n\ngo 1.25.0\n")


def test_the_generated_module_matches_what_pin_sh_made_for_the_pinned_release() -> None:
    """The tracked module was made by tools/kubernetes/pin.sh: the staging pins the
    generator writes from the same upstream list are the same lines."""
    tracked = (ROOT / "tools/kubernetes/go.mod").read_text()
    release = next(
        line.split()[2] for line in tracked.splitlines() if line.startswith("require k8s.io/")
    )
    # The tracked replace block pins exactly the staging modules; rebuild an upstream
    # go.mod naming them as upstream does and compare the generator's block with it.
    pinned = [line.split()[0] for line in tracked.splitlines() if " => " in line]
    upstream = (
        "go 1.26.0\nreplace (\n" + "".join(f"\t{m} => ./staging/src/{m}\n" for m in pinned) + ")\n"
    )

    def block(text: str) -> list[str]:
        return [line for line in text.splitlines() if " => " in line]

    assert block(b.go_mod(release, upstream)) == block(tracked)


def test_tools_go_imports_every_command_and_ldflags_carry_the_version() -> None:
    text = b.tools_go()
    assert text.startswith("//go:build tools\n")
    for name in b.COMMANDS:
        assert f'_ "k8s.io/kubernetes/cmd/{name}"' in text
    flags = b.ldflags("v1.35.4")
    assert "-X k8s.io/component-base/version.gitVersion=v1.35.4" in flags
    assert "-X k8s.io/client-go/pkg/version.gitMinor=35" in flags


def test_the_record_round_trips_and_says_what_to_expect() -> None:
    assert gobuild.parse_record("not json") == {}
    assert gobuild.parse_record('{"v1.36.3": {"seconds": "x"}}') == {}
    assert "never built here and no build is recorded" in gobuild.expectation({}, "v1.35.4")
    one = gobuild.with_build({}, "v1.36.3", gobuild.Built(566, 300 << 20, "2026-12-01T10:00:00Z"))
    two = gobuild.with_build(one, "v1.35.4", gobuild.Built(700, 290 << 20, "2026-12-06T20:40:00Z"))
    assert gobuild.parse_record(gobuild.record_text(two)) == two
    assert gobuild.expectation(two, "v1.35.4") == (
        "v1.35.4 took 700 s when last built (2026-12-06T20:40:00Z)"
    )
    assert gobuild.expectation(two, "v1.34.2") == (
        "v1.34.2 was never built here; v1.35.4 took 700 s (2026-12-06T20:40:00Z)"
    )


def test_proxy_settings() -> None:
    assert gobuild.proxy_url("https://proxy.golang.org,direct") == "https://proxy.golang.org"
    assert gobuild.proxy_url("direct|http://127.0.0.1:9/") == "http://127.0.0.1:9"
    assert gobuild.proxy_url("off") is None


def test_the_versions_served_and_what_is_offered_instead() -> None:
    served = b.parse_version_list(SERVED + "garbage\n\n")
    assert served[-2:] == ["v1.37.2", "v1.38.0-beta.0"]
    assert b.parse_version_list("v1.37.0\nv1.37.0-rc.1\n") == ["v1.37.0-rc.1", "v1.37.0"]
    assert b.suggestions(served, "v1.35.9") == ["v1.35.0", "v1.35.4", "v1.37.2"]
    assert b.suggestions(served, "v1.33.1") == ["v1.37.2"]
    said = b.not_served("v1.35.9", served, "https://proxy.example", "HTTP 404")
    assert said == (
        "the Go module proxy https://proxy.example does not serve k8s.io/kubernetes v1.35.9 "
        "(HTTP 404); of v1.35 its version list names v1.35.0, v1.35.4; the newest it lists "
        "is v1.37.2 (set cluster.kubernetes.version to one of these)"
    )
    said = b.not_served("v1.33.1", served, "https://proxy.example", "HTTP 404")
    assert "its version list names no v1.33 release; the newest it lists is v1.37.2" in said


@pytest.fixture
def proxy() -> Iterator[str]:
    with goproxy.serving(SERVED, unlisted=("v1.35.3",)) as (url, _):
        yield url


def test_a_version_the_proxy_does_not_serve_is_refused_before_anything_is_written(
    proxy: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABCTL_KUBE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GOPROXY", f"{proxy},direct")
    said: list[str] = []
    with pytest.raises(LabctlError, match=r"of v1\.35 its version list names v1\.35\.0, v1") as err:
        builder.build("v1.35.9", said.append)
    assert proxy in str(err.value)
    assert said[0].startswith("will build Kubernetes v1.35.9")
    assert not (tmp_path / "cache").exists()  # no work folder, no record


def test_the_cli_names_the_versions_served(proxy: str, tmp_path: Path) -> None:
    done = run_labctl(
        "kubernetes",
        "build",
        "--version",
        "1.36.9",
        env={"LABCTL_KUBE_CACHE": str(tmp_path), "GOPROXY": proxy},
    )
    assert done.returncode == 1, done.stderr
    assert "v1.36.9 (HTTP 404 for " in done.stderr
    assert "of v1.36 its version list names v1.36.1, v1.36.3; the newest it lists is v1.37.2" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr
    # -i: the version the inventory names.
    inventory = tmp_path / "inventory.yaml"
    text = REFERENCE.read_text()
    assert "  kubernetes:\n    version: " in text
    inventory.write_text(
        re.sub(r"(  kubernetes:\n    version: )\S+", r"\g<1>1.35.9", text, count=1)
    )
    done = run_labctl(
        "kubernetes",
        "build",
        "-i",
        str(inventory),
        env={"LABCTL_KUBE_CACHE": str(tmp_path / "cache"), "GOPROXY": proxy},
    )
    assert done.returncode == 1, done.stderr
    assert "does not serve k8s.io/kubernetes v1.35.9 (HTTP 404" in done.stderr
    bad = run_labctl("kubernetes", "build", "--version", "latest")
    assert bad.returncode == 2
    assert "'latest' is not a Kubernetes release" in bad.stderr


def test_a_built_version_costs_nothing_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABCTL_KUBE_CACHE", str(tmp_path))
    monkeypatch.setenv("GOPROXY", "off")  # asking a proxy would fail: nothing is asked
    dest = tmp_path / "v1.35.4"
    (dest / "bin").mkdir(parents=True)
    for name in b.COMMANDS[:-1]:
        (dest / "bin" / name).write_text("")
    (dest / ".stamp").write_text("x\n")
    p = builder.plan("v1.35.4")
    assert p.missing == ("kubectl",)
    assert "will build Kubernetes v1.35.4 (kubectl)" in p.describe()
    assert f"go's output goes to {tmp_path}/.work/v1.35.4/build.log" in p.describe()
    (dest / "bin" / "kubectl").write_text("")
    said: list[str] = []
    builder.build("v1.35.4", said.append)
    assert said == [f"Kubernetes v1.35.4 is built in {dest}"]


def test_the_record_in_the_cache_is_what_the_next_build_quotes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABCTL_KUBE_CACHE", str(tmp_path))
    record = gobuild.with_build({}, "v1.36.3", gobuild.Built(566, 1, "2026-12-01T10:00:00Z"))
    (tmp_path / gobuild.RECORD_NAME).write_text(gobuild.record_text(record))
    assert "v1.36.3 took 566 s" in builder.plan("v1.35.4").describe()


def test_a_version_the_list_leaves_out_but_the_proxy_serves_is_built(proxy: str) -> None:
    """proxy.golang.org's list of k8s.io/kubernetes omits releases it serves (v1.35.0):
    the version's own .info is the answer, the list only feeds the refusal."""
    builder.check_served("v1.35.3", proxy)
    with pytest.raises(LabctlError, match=r"v1\.35\.9 \(HTTP 404 for .*/@v/v1\.35\.9\.info\)"):
        builder.check_served("v1.35.9", proxy)


def test_a_second_build_of_a_version_waits_for_the_first_and_then_builds_nothing(
    proxy: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two engineers asking for v1.35.4 at once: the second waits on the version's lock,
    says so, and finds it built when the first is done (no second compile)."""
    import fcntl
    import threading

    monkeypatch.setenv("LABCTL_KUBE_CACHE", str(tmp_path))
    monkeypatch.setenv("GOPROXY", proxy)
    lock = tmp_path / ".work" / "v1.35.4.lock"
    lock.parent.mkdir(parents=True)
    said: list[str] = []
    with lock.open("a") as first:
        fcntl.flock(first, fcntl.LOCK_EX)
        second = threading.Thread(target=builder.build, args=("v1.35.4", said.append))
        second.start()
        for _ in range(200):
            if any(line.startswith("waiting for another build of v1.35.4") for line in said):
                break
            second.join(0.05)
        assert any(line.startswith("waiting for another build") for line in said), said
        dest = tmp_path / "v1.35.4"  # what the first build leaves
        (dest / "bin").mkdir(parents=True)
        for name in b.COMMANDS:
            (dest / "bin" / name).write_text("")
        (dest / ".stamp").write_text("x\n")
    second.join(10)
    assert not second.is_alive()
    assert said[-1] == f"Kubernetes v1.35.4 is built in {dest}"
    assert not (tmp_path / ".work" / "v1.35.4").exists()  # nothing resolved, nothing compiled
