"""Where this machine keeps the Kubernetes binaries it built, as scripts/build-kubernetes.sh does.

The cache is keyed by version: ``<root>/v1.36.3/bin``. The root is
``LABCTL_KUBE_CACHE``, else ``/var/cache/labctl/kubernetes`` for root, else
``~/.cache/labctl/kubernetes``. The simulated lab's nodes share the host's root, so
they run these very files (``labctl sim env`` points ``LABCTL_KUBE_BIN_DIR`` here).
"""

from __future__ import annotations

import os
from pathlib import Path

VERSION_PLACEHOLDER = "{version}"


def cache_root() -> Path:
    chosen = os.environ.get("LABCTL_KUBE_CACHE")
    if chosen:
        return Path(chosen)
    if os.geteuid() == 0:
        return Path("/var/cache/labctl/kubernetes")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "labctl" / "kubernetes"


def bin_dir(version: str = VERSION_PLACEHOLDER) -> Path:
    """The folder with the binaries of ``version`` (v1.36.3), or with the placeholder."""
    return cache_root() / version / "bin"
