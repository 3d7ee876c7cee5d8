"""`labctl plan` (every layer, no lab) and `labctl pki mint` for generated labs of 250 to 1,000;
and, with ``--lab-sizes``, simulated labs of a few to a few dozen servers brought up and
bootstrapped.

Usage: python benchmarks/bench_scale.py [--sizes 250,500,1000] [--backends builtin,cfssl]
       [--skip-plan] [--skip-mint]
       flock /tmp/labctl-sim.lock python benchmarks/bench_scale.py --lab-sizes 4,8,12,16
       [--reruns 3]

Issue 28, item 3: how planning and minting grow with the server count. Each figure
is one whole process (wall time, and its peak resident memory from wait4):

* plan: every layer's plans for the generated lab, as `labctl plan` makes them in
  a dry run, without a lab: the inventory is loaded and checked, each layer's facts
  are gathered from local state as the runner does, and each plan is made. What a
  dry run would then survey on the nodes (SSH, BMCs) is not part of it: there is
  no lab. A fact that only a run can make (the PKI before it is minted, Ceph's keys)
  ends that layer's plans, as in a dry run; the table says where.
* mint: `labctl pki mint --backend B` into an empty directory (every certificate
  and key of the lab), then again (converged: mints nothing, re-checks all).

The generated inventory (`benchmarks/gen_inventory.py`) gets Calico's manifest
(a placeholder reference: nothing is fetched) and a CA passphrase, which a real
lab's inventory has. Calico runs its default node-to-node mesh, whose size is
n*(n-1) BGP sessions: the calico layers grow with n^2 by design (a lab that size
would use route reflectors).

``--lab-sizes`` (root, under the machine's lab lock; nothing else is measured then):
for each N a generated lab (``lab_inventory``: its first switch an FRR core switch
every node peers with, etcd and the control plane on the first three servers' roles
as the generator gives them, Ceph left out) is brought up with ``labctl sim up`` in a
temporary directory, then timed as whole processes: ``bootstrap`` from nothing (power,
os, pki, etcd on 3, kubernetes, calico, calico-resources), ``--reruns`` converged
re-runs (each must change nothing), and as many ``power status --all``; the drop in
MemAvailable while the lab is bootstrapped; then ``sim down``, whatever happened. It
prints the table and the growth per added server between sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_inventory import generate, peer_with_frr_core

PASSPHRASE = "bench-scale-passphrase"

PLAN = r"""
import json, sys, time
from pathlib import Path
start = time.perf_counter()
from labctl.engine.facts import FactPending
from labctl.engine.layer import LayerContext
from labctl.inventory import require_inventory
from labctl.layers import LAYERS
path = Path(sys.argv[1])
ctx = LayerContext(require_inventory(path), path, path.parent / "state", True)
report = {"load": time.perf_counter() - start, "layers": []}
for layer in LAYERS:
    began = time.perf_counter()
    ctx.facts.gather(getattr(layer, "facts", ()), ctx)
    plans = steps = 0
    pending = None
    made = layer.plans(ctx)
    while True:
        try:
            plan = next(made)
        except StopIteration:
            break
        except FactPending as exc:
            pending = exc.plan
            break
        plans += 1
        steps += len(plan.steps)
        ctx.facts.gather(plan.makes, ctx)
    ctx.facts.take_assumed()
    report["layers"].append(
        {"layer": layer.name, "plans": plans, "steps": steps, "pending": pending,
         "seconds": time.perf_counter() - began}
    )
json.dump(report, sys.stdout)
"""


def inventory_for(count: int) -> dict[str, Any]:
    data = generate(count)
    calico = data["cluster"]["calico"]
    calico["version"] = "3.28.2"
    calico["manifest"] = {"url": "https://example.invalid/calico.yaml", "sha256": "0" * 64}
    data["cluster"]["pki"] = {"passphrase": {"env": "LABCTL_CA_PASSPHRASE"}}
    return data


SIM_SECRETS = {
    "LABCTL_BMC_PASSWORD": "bench-bmc-pw",
    "LABCTL_PDU_AUTH_KEY": "bench-pdu-auth",
    "LABCTL_PDU_PRIV_KEY": "bench-pdu-priv",
    "LABCTL_CA_PASSPHRASE": PASSPHRASE,
}


def lab_inventory(count: int) -> dict[str, Any]:
    """A generated lab the simulated lab runs: an FRR core switch every node peers with
    (as ``bench_calico.py``'s), the PKI's passphrase, no Ceph."""
    data = peer_with_frr_core(generate(count))
    data["cluster"]["pki"] = {"passphrase": {"env": "LABCTL_CA_PASSPHRASE"}}
    del data["cluster"]["ceph"]
    for server in data["servers"]:
        server["roles"] = [r for r in server["roles"] if not r.startswith("ceph-")]
        server["disks"] = [d for d in server["disks"] if d["role"] != "osd"]
    return data


def mem_available() -> int:
    """MemAvailable in MiB."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    return 0


def lab_run(count: int, reruns: int) -> dict[str, Any]:
    """One generated lab of ``count`` servers: up, bootstrapped, converged, power status."""
    import statistics

    with tempfile.TemporaryDirectory(prefix=f"bench-scale-{count}-") as tmp:
        work = Path(tmp)
        (work / "inventory.yaml").write_text(yaml.safe_dump(lab_inventory(count), sort_keys=False))
        env = dict(os.environ, **SIM_SECRETS)
        before = mem_available()
        up, _, _ = measured([*labctl(), "sim", "up"], work, env)
        try:
            _, _, exports = measured([*labctl(), "sim", "env"], work, env)
            for line in exports.splitlines():
                key, _, value = line.removeprefix("export ").partition("=")
                env[key] = value.strip("'")
            first, _, out = measured([*labctl(), "bootstrap", "-o", "json"], work, env)
            first_layers = layer_seconds(json.loads(out))
            used = before - mem_available()
            again: list[float] = []
            layers: dict[str, float] = {}
            for _ in range(reruns):
                wall, _, out = measured([*labctl(), "bootstrap", "-o", "json"], work, env)
                layers = layer_seconds(json.loads(out))
                changed = [
                    f"{p['layer']}: {s['description']}"
                    for layer in json.loads(out)["layers"]
                    for p in layer["plans"]
                    for s in p["steps"]
                    if s["outcome"] not in ("unchanged", "skipped")
                ]
                if changed:
                    raise SystemExit("a converged re-run changed something:\n" + "\n".join(changed))
                again.append(wall)
            status = [
                measured([*labctl(), "power", "status", "--all"], work, env)[0]
                for _ in range(reruns)
            ]
        finally:
            down, _, _ = measured([*labctl(), "sim", "down"], work, env)
    return {
        "servers": count,
        "up": up,
        "bootstrap": first,
        "converged": statistics.median(again) if again else float("nan"),
        "power_status": statistics.median(status) if status else float("nan"),
        "memory": used,
        "down": down,
        "layers": layers,
        "bootstrap_layers": first_layers,
    }


def layer_seconds(report: dict[str, Any]) -> dict[str, float]:
    """Each layer's seconds in a run's JSON report (its plans' own clocks, summed)."""
    return {
        layer["layer"]: round(sum(float(p["seconds"]) for p in layer["plans"]), 2)
        for layer in report["layers"]
    }


def lab_table(rows: list[dict[str, Any]]) -> None:
    print("## simulated labs (whole processes; converged and power status: medians)")
    print()
    print(
        "| servers | sim up (s) | bootstrap (s) | converged (s) | power status --all (s) "
        "| memory while up (MiB) |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['servers']} | {r['up']:.2f} | {r['bootstrap']:.2f} | {r['converged']:.2f} "
            f"| {r['power_status']:.2f} | {r['memory']} |"
        )
    sizes = [r["servers"] for r in rows]
    print()
    for key in ("bootstrap", "converged", "power_status"):
        print(f"{key}: growth per added server (ms, between sizes): "
              f"{growth(sizes, [r[key] for r in rows])}")  # fmt: skip
    for key, title in (("bootstrap_layers", "bootstrap"), ("layers", "the last converged re-run")):
        print()
        print(f"{title}, per layer (s):")
        for r in rows:
            layers = ", ".join(f"{name} {sec:.2f}" for name, sec in r.get(key, {}).items())
            print(f"  {r['servers']} servers: {layers}")


def measured(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) and stdout of one process; a failure aborts."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            said = out.read().decode(errors="replace")
            raise SystemExit(
                f"{' '.join(argv[:5])} exited {proc.returncode}: {failed_steps(said)}"
                f"{err.read()[-600:]!r}"
            )
        return wall, usage.ru_maxrss / 1024, out.read().decode()


def failed_steps(said: str) -> str:
    """The failed steps of a bootstrap's JSON report, one line each (else nothing)."""
    try:
        report = json.loads(said)
    except ValueError:
        return said[-600:]
    lines = [
        f"{p['layer']}: {s['target']}: {s['description']}: {s.get('error')}\n"
        for layer in report.get("layers", [])
        for p in layer.get("plans", [])
        for s in p.get("steps", [])
        if s.get("outcome") == "failed"
    ]
    return "".join(lines)


def labctl() -> list[str]:
    found = shutil.which("labctl")
    return [found] if found else [sys.executable, "-m", "labctl"]


def growth(sizes: list[int], seconds: list[float]) -> str:
    """Milliseconds per added server between consecutive sizes."""
    steps = [
        f"{1000 * (b - a) / (m - n):.2f}"
        for n, m, a, b in zip(sizes, sizes[1:], seconds, seconds[1:], strict=False)
    ]
    return " / ".join(steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="250,500,1000")
    parser.add_argument("--backends", default="builtin,cfssl")
    parser.add_argument("--skip-plan", action="store_true")
    parser.add_argument("--skip-mint", action="store_true")
    parser.add_argument("--lab-sizes", help="simulated labs of these sizes (root, lab lock)")
    parser.add_argument("--reruns", type=int, default=3)
    args = parser.parse_args()
    if args.lab_sizes:
        if os.geteuid() != 0:
            raise SystemExit("run as root: the simulated lab makes namespaces")
        rows = []
        for n in [int(s) for s in args.lab_sizes.split(",")]:
            rows.append(lab_run(n, args.reruns))
            print(json.dumps(rows[-1]), flush=True)
        lab_table(rows)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    env = dict(os.environ, LABCTL_CA_PASSPHRASE=PASSPHRASE)
    plan_rows: list[tuple[int, float, float, dict[str, Any]]] = []
    mint_rows: dict[str, list[tuple[int, float, float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            lab = Path(tmp) / f"lab-{n}"
            lab.mkdir()
            inventory = lab / "inventory.yaml"
            inventory.write_text(yaml.safe_dump(inventory_for(n), sort_keys=False))
            if not args.skip_plan:
                wall, rss, out = measured([sys.executable, "-c", PLAN, str(inventory)], lab, env)
                plan_rows.append((n, wall, rss, json.loads(out)))
            if not args.skip_mint:
                for backend in args.backends.split(","):
                    work = lab / f"mint-{backend}"
                    work.mkdir()
                    shutil.copy(inventory, work / "inventory.yaml")
                    mint = [*labctl(), "pki", "mint", "-i", "inventory.yaml", "--backend", backend]
                    first, rss, _ = measured(mint, work, env)
                    again, _, _ = measured(mint, work, env)
                    mint_rows.setdefault(backend, []).append((n, first, rss, again))
    if plan_rows:
        print("## plan, every layer, no lab (one process each)")
        print()
        print("| servers | wall (s) | peak RSS (MiB) | load+check (s) | per layer (s, steps) |")
        print("|---|---|---|---|---|")
        for n, wall, rss, report in plan_rows:
            layers = ", ".join(
                f"{r['layer']} {r['seconds']:.2f} ({r['steps']}"
                + (f", then pending {r['pending']})" if r["pending"] else ")")
                for r in report["layers"]
            )
            print(f"| {n} | {wall:.2f} | {rss:.0f} | {report['load']:.2f} | {layers} |")
        walls = [w for _, w, _, _ in plan_rows]
        print()
        print(f"growth per added server (ms, between sizes): {growth(sizes, walls)}")
        print()
    for backend, rows in mint_rows.items():
        print(f"## pki mint --backend {backend} (one process each)")
        print()
        print("| servers | first mint (s) | peak RSS (MiB) | converged re-run (s) |")
        print("|---|---|---|---|")
        for n, first, rss, again in rows:
            print(f"| {n} | {first:.2f} | {rss:.0f} | {again:.2f} |")
        print()
        firsts = [f for _, f, _, _ in rows]
        agains = [a for _, _, _, a in rows]
        print(
            f"growth per added server (ms, between sizes): first {growth(sizes, firsts)}; "
            f"converged {growth(sizes, agains)}"
        )
        print()


if __name__ == "__main__":
    main()
