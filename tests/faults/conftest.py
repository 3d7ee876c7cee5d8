"""Faults run against the simulated reference lab, the one the e2e tests share.

Every test here breaks one thing and either mends it (or the shared lab's fixture
does: tests/e2e/conftest.py says how) before the next one runs.
"""

import pytest

from tests.e2e.conftest import Lab, shared_lab  # noqa: F401  (the fixture, shared)


@pytest.fixture
def lab(shared_lab: Lab) -> Lab:  # noqa: F811  (the imported fixture, asked for)
    return shared_lab
