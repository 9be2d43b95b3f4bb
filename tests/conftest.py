"""Shared test helpers: paths to the repository's scenarios and the seed."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
SEED_SCENARIO = SCENARIOS / "iris-abtest"


@pytest.fixture
def seed_scenario() -> Path:
    return SEED_SCENARIO
