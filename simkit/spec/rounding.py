"""Largest-remainder rounding of traffic shares to integer weights summing to 100.

One rule for every place that turns shares into weights (strategies' splits, replay's initial
weights inferred from recorded traffic, calibration's manifests), so that the same shares give the
same weights wherever they are rounded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = ["largest_remainder"]


def largest_remainder(shares: Mapping[str, float]) -> dict[str, int]:
    """Integer weights summing to 100, closest to the non-negative ``shares`` (any scale).

    Ties in the remainders go to the earlier key (insertion order), so the result is
    deterministic. Shares that sum to 0, a negative or a non-finite share have no meaningful
    rounding: ValueError, and the caller decides (e.g. all traffic to the baseline)."""
    values = list(shares.values())
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise ValueError(f"shares must be finite and non-negative, got {dict(shares)}")
    total = math.fsum(values)
    if total <= 0:
        raise ValueError("shares must have a positive sum")
    scaled = {k: 100.0 * v / total for k, v in shares.items()}
    floors = {k: int(math.floor(v + 1e-9)) for k, v in scaled.items()}  # 33.333..*3 must not lose 1
    left = 100 - sum(floors.values())
    order = sorted(scaled, key=lambda k: -(scaled[k] - floors[k]))
    for k in order[: max(0, left)]:
        floors[k] += 1
    return floors
