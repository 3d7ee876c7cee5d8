"""cfssl input documents (ca-config.json, CSR JSON) as plain, deterministic data."""

from __future__ import annotations

import json
from typing import Any

from labctl.pki.specs import PROFILE_USAGES, CertSpec, PkiInput


def go_duration(days: int) -> str:
    # cfssl 1.2 parses expiry with Go's time.ParseDuration, which has no "d" unit.
    return f"{days * 24}h"


def ca_config(inp: PkiInput) -> dict[str, Any]:
    expiry = go_duration(inp.validity_days)
    profiles = {
        name: {"usages": list(usages), "expiry": expiry}
        for name, usages in sorted(PROFILE_USAGES.items())
        if name != "ca"
    }
    return {"signing": {"default": {"expiry": expiry}, "profiles": profiles}}


def csr_json(spec: CertSpec) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "CN": spec.common_name,
        "hosts": list(spec.hosts),
        "key": {"algo": spec.key_algo, "size": spec.key_size},
        "names": [{"O": o} for o in spec.organizations],
    }
    if spec.is_ca:
        doc["ca"] = {"expiry": go_duration(spec.validity_days)}
    return doc


def dumps(doc: dict[str, Any]) -> str:
    """Stable text: sorted keys, fixed indent, trailing newline (diff-friendly in git)."""
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"
