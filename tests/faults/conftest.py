"""Faults run against the simulated reference lab, the same fixture as the e2e tests."""

from tests.e2e.conftest import lab  # noqa: F401  (the fixture, shared)
