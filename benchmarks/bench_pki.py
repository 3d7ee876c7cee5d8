"""Mint the full PKI for the 3-node sample and a 100-node input, cfssl vs builtin.

Run: PYTHONPATH=. python benchmarks/bench_pki.py
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

from labctl.pki.backend import Backend
from labctl.pki.builtin_backend import BuiltinBackend
from labctl.pki.cfssl_backend import CfsslBackend
from labctl.pki.mint import mint_all
from labctl.pki.specs import PkiInput, plan_certificates
from labctl.pki.store import PkiStore
from tests.pki_sample import sample_input, scaled_input

PASS = b"bench-passphrase"


def run(inp: PkiInput, backend: Backend) -> tuple[int, float, float]:
    with tempfile.TemporaryDirectory() as d:
        store = PkiStore(Path(d) / "ssl")
        t0 = time.perf_counter()
        report = mint_all(inp, store, backend, PASS, dt.datetime.now(dt.UTC))
        first = time.perf_counter() - t0
        t1 = time.perf_counter()
        again = mint_all(inp, store, backend, PASS, dt.datetime.now(dt.UTC))
        second = time.perf_counter() - t1
        assert not again.minted
        return len(report.minted), first, second


def main() -> None:
    cases = [("3-node sample", sample_input()), ("100-node", scaled_input(100))]
    backends: list[Backend] = [CfsslBackend(), BuiltinBackend()]
    print(
        f"{'input':<14} {'certs':>5} {'backend':<8} {'mint s':>8} {'ms/item':>8} {'re-check s':>10}"
    )
    for label, inp in cases:
        n_certs = len(plan_certificates(inp))  # + 1 SA key pair in "minted"
        for b in backends:
            minted, first, second = run(inp, b)
            print(
                f"{label:<14} {n_certs:>5} {b.name:<8} {first:>8.2f} "
                f"{1000 * first / minted:>8.1f} {second:>10.2f}"
            )


if __name__ == "__main__":
    main()
