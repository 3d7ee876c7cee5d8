"""`labctl kubernetes build --dry-run` against the real go: the module it generates for
the pinned release resolves, offline, to the pins tools/kubernetes/pin.sh made.

go runs for real (``go mod download``, ``go mod tidy``) with its proxy pointed at
tests/peers/goproxy.py, which knows only k8s.io/kubernetes' versions: everything else
must come from this machine's module cache, filled by the set-up's build of the pinned release.
Nothing is compiled (a Kubernetes compile takes ten minutes; docs/performance.md has
the figure of a real one), and nothing lands in the cache but the work folder.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT
from tests.labctl_process import run_labctl
from tests.peers import goproxy

TRACKED = ROOT / "tools/kubernetes"
PINNED = next(
    line.split()[2]
    for line in (TRACKED / "go.mod").read_text().splitlines()
    if line.startswith("require k8s.io/kubernetes ")
)


def _replaces(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if " => " in line]


def test_dry_run_generates_the_pinned_module_and_compiles_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with goproxy.serving(f"v1.35.4\n{PINNED}\n") as (url, asked):
        done = run_labctl(
            "kubernetes",
            "build",
            "--version",
            PINNED.lstrip("v"),
            "--dry-run",
            env={
                "LABCTL_KUBE_CACHE": str(cache),
                "GOPROXY": url,
                "GOFLAGS": "-mod=mod",
                "GOSUMDB": "off",
            },
            timeout=300,
        )
    assert done.returncode == 0, done.stderr
    assert asked == [f"/k8s.io/kubernetes/@v/{PINNED}.info"]  # go itself asked nothing
    work = cache / ".work" / PINNED
    assert f"go's output goes to {work}/build.log" in done.stderr
    assert "[1/3] resolving the module graph" in done.stderr
    assert "compiling" not in done.stderr
    generated = (work / "go.mod").read_text()
    tracked = (TRACKED / "go.mod").read_text()
    assert f"require k8s.io/kubernetes {PINNED}" in generated
    assert _replaces(generated) == _replaces(tracked)
    # go.sum: everything the tracked module needs (the generated one adds kube-proxy's).
    sums = set((work / "go.sum").read_text().splitlines())
    assert set((TRACKED / "go.sum").read_text().splitlines()) <= sums
    assert sorted(p.name for p in cache.iterdir()) == [".work"]  # no build, no record
