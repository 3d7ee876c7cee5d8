"""Calico's install manifest: fetched once by URL and kept only if its SHA-256 matches.

The inventory names Calico's own manifest (``cluster.calico.manifest``: a URL and
its SHA-256) instead of labctl shipping a copy of Calico. The first run fetches
it into the operator's cache (``.labctl/cache/calico/<sha256>.yaml`` beside the
inventory), written only after the digest matched, under a temp name then
renamed; later runs read the cache and re-hash it, so a cached file changed on
disk is refused like a bad download. ``file://`` URLs serve air-gapped labs (the
operator downloads the manifest once and names the copy); ``http://`` is allowed
because the digest, not the transport, is what proves the bytes.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from labctl.errors import LabctlError
from labctl.files import write_atomic
from labctl.inventory.model import CalicoManifest

# Calico's calico.yaml is about 0.3 MB; anything past this is not a manifest.
MAX_BYTES = 32 * 1024 * 1024
CRD_KIND = "CustomResourceDefinition"


class ManifestError(LabctlError):
    """The manifest cannot be had, or is not the one the inventory names."""


def cache_path(cache_dir: Path, manifest: CalicoManifest) -> Path:
    return cache_dir / f"{manifest.sha256}.yaml"


def _download(url: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data: bytes = response.read(MAX_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ManifestError(f"cluster.calico.manifest.url: cannot fetch {url} ({reason})") from None
    if len(data) > MAX_BYTES:
        raise ManifestError(
            f"cluster.calico.manifest.url: {url} is larger than {MAX_BYTES // 2**20} MiB"
        )
    return data


def fetch(manifest: CalicoManifest, cache_dir: Path, timeout: float = 60.0) -> bytes:
    """The manifest's bytes, from the cache or the URL, always matching its SHA-256."""
    cached = cache_path(cache_dir, manifest)
    if cached.exists():
        data = cached.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest == manifest.sha256:
            return data
        raise ManifestError(
            f"the cached Calico manifest {cached} no longer matches its SHA-256 "
            f"(it is {digest}); remove it and run again to fetch it anew"
        )
    data = _download(manifest.url, timeout)
    digest = hashlib.sha256(data).hexdigest()
    if digest != manifest.sha256:
        raise ManifestError(
            f"cluster.calico.manifest: {manifest.url} has SHA-256 {digest}, not the "
            f"{manifest.sha256} the inventory names; nothing was applied"
        )
    write_atomic(cached, data)
    return data


def documents(data: bytes, source: str) -> list[dict[str, Any]]:
    """The manifest's objects, in order; empty documents (a lone ``---``) dropped."""
    try:
        loaded = list(yaml.safe_load_all(data.decode("utf-8")))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{source} is not YAML: {exc}") from None
    out: list[dict[str, Any]] = []
    for i, doc in enumerate(loaded):
        if doc is None:
            continue
        if (
            not isinstance(doc, dict)
            or not doc.get("apiVersion")
            or not doc.get("kind")
            or not isinstance(doc.get("metadata"), dict)
            or not doc["metadata"].get("name")
        ):
            raise ManifestError(
                f"{source}: document {i + 1} is not a Kubernetes object "
                "(apiVersion, kind and metadata.name)"
            )
        out.append(doc)
    return out


def definitions(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The CustomResourceDefinitions among ``docs``: applied first, and alone on a lab
    whose calico-node is a stand-in (its workloads' images cannot run there)."""
    # Without any status a manifest carries (Calico's v3.32.1 one has an empty one on
    # clusternetworkpolicies): the server owns it, so an applied status never matches
    # and every converged run would find the definition changed.
    # Likewise ``spec.preserveUnknownFields: false`` (all of that manifest's): the default,
    # which the server leaves out of what it returns.
    return [_as_served(d) for d in docs if d["kind"] == CRD_KIND]


def _as_served(crd: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in crd.items() if k != "status"}
    spec = out.get("spec")
    if isinstance(spec, dict) and spec.get("preserveUnknownFields") is False:
        out["spec"] = {k: v for k, v in spec.items() if k != "preserveUnknownFields"}
    return out
