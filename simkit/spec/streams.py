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

__all__ = ["child_rng", "name_key", "seed_from_names"]


def name_key(*names: str | int) -> tuple[int, ...]:
    """``("thinning", "iter8")`` -> CRC-32 of each name; integers stand for themselves."""
    return tuple(n if isinstance(n, int) else zlib.crc32(n.encode()) for n in names)


def child_rng(seed: int, *names: str | int) -> np.random.Generator:
    """An independent stream per named component of the run seeded ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=name_key(*names)))


def seed_from_names(*names: str | int) -> np.random.SeedSequence:
    """Seed material from names alone (no run seed), e.g. a benchmark's bootstrap."""
    return np.random.SeedSequence(list(name_key(*names)))
