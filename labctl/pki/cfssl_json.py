"""cfssl input documents (ca-config.json, CSR JSON) as plain, deterministic data.

It lives with the PKI code that runs cfssl rather than in ``render/`` (whose
documents the lab's peers read): ``render/`` imports the PKI's specs and
placement, so ``pki`` importing ``render`` would make the two a circle.
"""

from __future__ import annotations

import json
from typing import Any

from labctl.pki.specs import PROFILE_USAGES, CertSpec, PkiInput


def go_duration(days: int) -> str:
    # cfssl 1.2 parses expiry with Go's time.ParseDuration, which has no "d" unit.
    return f"{days * 24}h"


def signing_profile(profile: str, days: int) -> dict[str, Any]:
    """One cfssl signing profile; an intermediate CA gets CA:TRUE with path length 0."""
    doc: dict[str, Any] = {"usages": list(PROFILE_USAGES[profile]), "expiry": go_duration(days)}
    if profile == "intermediate-ca":
        # max_path_len_zero: without it cfssl reads 0 as "no limit".
        doc["ca_constraint"] = {"is_ca": True, "max_path_len": 0, "max_path_len_zero": True}
    return doc


def ca_config(inp: PkiInput) -> dict[str, Any]:
    expiry = go_duration(inp.validity_days)
    profiles = {
        name: signing_profile(name, inp.validity_days)
        for name in sorted(PROFILE_USAGES)
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
