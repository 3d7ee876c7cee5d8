"""Faults run against the simulated reference lab, the one the e2e tests share.

Every test here breaks one thing and either mends it (or the shared lab's fixture
does: tests/e2e/conftest.py says how) before the next one runs.
"""

import pytest

from tests.e2e.conftest import Lab


@pytest.fixture
def lab(shared_lab: Lab) -> Lab:
    return shared_lab
