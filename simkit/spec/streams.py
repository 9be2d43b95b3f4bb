"""Random streams named by strings: the one rule for turning names into numpy seed material.

Every component that draws random numbers (a predictor's latencies, a router, replay's thinning,
a benchmark's bootstrap, a sweep's world seeds) gets its own stream keyed by names, so adding one
component never shifts another's draws, and the same names give the same stream in ``simkit run``,
``simkit replay`` and ``simkit bench``. Names become numbers with CRC-32 (stable across processes
and Python versions, unlike ``hash``).
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["check_seed", "child_rng", "name_key", "seed_from_names"]

MAX_SEED = 2**63 - 1


def check_seed(seed: int) -> int:
    """A run seed numpy accepts (0 to 2**63 - 1); a SpecError naming ``--seed`` otherwise (the
    scenario's ``spec.seed`` is checked with the same bounds when the scenario loads)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        from simkit.errors import SpecError

        raise SpecError.from_cli("--seed", f"a seed is a whole number from 0 to {MAX_SEED}, got {seed!r}")
    return seed


def name_key(*names: str | int) -> tuple[int, ...]:
    """``("thinning", "iter8")`` -> CRC-32 of each name; integers stand for themselves."""
    return tuple(n if isinstance(n, int) else zlib.crc32(n.encode()) for n in names)


def child_rng(seed: int, *names: str | int) -> np.random.Generator:
    """An independent stream per named component of the run seeded ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(check_seed(seed), spawn_key=name_key(*names)))


def seed_from_names(*names: str | int) -> np.random.SeedSequence:
    """Seed material from names alone (no run seed), e.g. a benchmark's bootstrap."""
    return np.random.SeedSequence(list(name_key(*names)))
