from __future__ import annotations

import shutil

import pytest

from labctl.pki.backend import Backend
from labctl.pki.builtin_backend import BuiltinBackend
from labctl.pki.cfssl_backend import CfsslBackend


def require(binary: str, package: str) -> str:
    # No skips: a missing peer is a failure that says what to install.
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} not found on PATH; install the Debian package {package}")
    return path


@pytest.fixture(params=["cfssl", "builtin"])
def backend(request: pytest.FixtureRequest) -> Backend:
    require("openssl", "openssl")
    if request.param == "cfssl":
        return CfsslBackend(require("cfssl", "golang-cfssl"))
    return BuiltinBackend()
