"""Calico's manifest: fetched once, kept only when its SHA-256 matches, read as objects."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.calico import manifest
from labctl.inventory.model import CalicoManifest

TEXT = b"""---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: ippools.projectcalico.org}
---
---
apiVersion: v1
kind: ConfigMap
metadata: {name: calico-config, namespace: kube-system}
"""


def pinned(url: str, data: bytes = TEXT) -> CalicoManifest:
    return CalicoManifest(url, hashlib.sha256(data).hexdigest())


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """An HTTP server on loopback serving tmp_path/www, counting requests."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "calico.yaml").write_bytes(TEXT)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(www), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/calico.yaml"
    finally:
        server.shutdown()
        server.server_close()


def test_fetched_over_http_into_the_cache_then_read_from_it(served: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    want = pinned(served)
    assert manifest.fetch(want, cache) == TEXT
    assert (cache / f"{want.sha256}.yaml").read_bytes() == TEXT
    (tmp_path / "www" / "calico.yaml").unlink()  # the cache serves from now on
    assert manifest.fetch(want, cache) == TEXT


def test_a_wrong_digest_is_refused_and_nothing_cached(served: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    wrong = CalicoManifest(served, "a" * 64)
    with pytest.raises(manifest.ManifestError, match=r"has SHA-256 .* not the a{64}"):
        manifest.fetch(wrong, cache)
    assert not cache.exists() or not any(cache.iterdir())


def test_a_cached_copy_changed_on_disk_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "calico.yaml"
    source.write_bytes(TEXT)
    want = pinned(source.as_uri())
    manifest.fetch(want, tmp_path / "cache")
    manifest.cache_path(tmp_path / "cache", want).write_bytes(TEXT + b"# edited\n")
    with pytest.raises(manifest.ManifestError, match="no longer matches"):
        manifest.fetch(want, tmp_path / "cache")


def test_an_unreachable_url_names_the_field(tmp_path: Path) -> None:
    missing = CalicoManifest((tmp_path / "nowhere.yaml").as_uri(), "b" * 64)
    with pytest.raises(
        manifest.ManifestError, match=r"cluster\.calico\.manifest\.url: cannot fetch"
    ):
        manifest.fetch(missing, tmp_path / "cache")


def test_documents_and_definitions() -> None:
    docs = manifest.documents(TEXT, "calico.yaml")
    assert [d["kind"] for d in docs] == ["CustomResourceDefinition", "ConfigMap"]
    assert [d["metadata"]["name"] for d in manifest.definitions(docs)] == [
        "ippools.projectcalico.org"
    ]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (b"a: [", "is not YAML"),
        (b"- 1\n- 2\n", "document 1 is not a Kubernetes object"),
        (b"kind: X\napiVersion: v1\nmetadata: {}\n", "document 1 is not"),
    ],
)
def test_what_is_not_a_manifest_is_named(text: bytes, said: str) -> None:
    with pytest.raises(manifest.ManifestError, match=said):
        manifest.documents(text, "calico.yaml")


def test_a_definition_whose_status_is_still_null_is_not_established() -> None:
    """The API server answers a just-created CustomResourceDefinition with ``status``
    or its ``conditions`` null: the wait reads that as not yet, where it raised a
    TypeError and failed a bootstrap."""
    from labctl.calico.resources import _established

    assert not _established({"status": {"conditions": None}})
    assert not _established({"status": None})
    assert not _established(None)
    established = {"status": {"conditions": [{"type": "Established", "status": "True"}]}}
    assert _established(established)
