"""A converged `pki mint` writes nothing (issue 28, item 3).

Every mint used to rewrite each certificate's CSR JSON (an atomic write: two fsyncs
each), so a re-run that minted nothing still replaced two files per server: on a
busy disk that was most of the converged run's time at 1,000 servers
(benchmarks/bench_scale.py). Here every file of the store keeps its inode and its
modification time across a second mint; a changed CSR is still written.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from labctl.pki.builtin_backend import BuiltinBackend
from labctl.pki.mint import mint_all
from labctl.pki.store import PkiStore
from tests.pki_sample import sample_input

PASS = b"converged-mint-passphrase"


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_a_second_mint_rewrites_no_file(tmp_path: Path) -> None:
    store = PkiStore(tmp_path / "ssl")
    now = dt.datetime.now(dt.UTC)
    first = mint_all(sample_input(), store, BuiltinBackend(), PASS, now)
    assert first.minted
    before = _files(tmp_path)
    again = mint_all(sample_input(), store, BuiltinBackend(), PASS, now)
    assert not again.minted
    assert _files(tmp_path) == before


def test_a_changed_csr_is_still_written(tmp_path: Path) -> None:
    store = PkiStore(tmp_path / "ssl")
    now = dt.datetime.now(dt.UTC)
    mint_all(sample_input(), store, BuiltinBackend(), PASS, now)
    csr = store.path("ca-config.json")
    original = csr.read_text()
    csr.write_text("{}")
    mint_all(sample_input(), store, BuiltinBackend(), PASS, now)
    assert csr.read_text() == original
