"""``simkit plan --verify N``: the plan's detection probabilities against full simulations.

Each seed runs the scenario with the planned candidate (the baseline plus the effects) and the
planned traffic through the whole pipeline: the simulated world (``--engine``, default auto), the
TSDB, PromQL through httpx, the control loop and the policy. A run has *detected* by iteration
``k`` when the policy rolled back at or before ``k``. The simulated rate per iteration is compared
with the planned one; the binomial standard error of the simulated rate says how close the two
can be expected to be.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from simkit.plan.planner import Detection, Setup, verified_bundle
from simkit.sim.experiment import simulate_experiment
from simkit.spec.bundle import Bundle

SEED_BASE = 10_000  # verify's seeds, apart from the scenarios' own small seeds


def _detections(
    bundle: Bundle, strategy: str, params: Mapping[str, Any], seeds: Sequence[int], engine: str | None
) -> list[int | None]:
    out: list[int | None] = []
    for seed in seeds:
        run = simulate_experiment(bundle, seed, strategy, params, engine=engine)
        at = next((r.iteration for r in run.result.iterations if r.decision.verdict == "rollback"), None)
        out.append(at)
    return out


@dataclass(frozen=True)
class VerifyRow:
    iteration: int
    predicted: float
    simulated: float
    se: float  # binomial standard error of ``simulated``

    @property
    def diff(self) -> float:
        return self.simulated - self.predicted


def verify(
    s: Setup,
    detection: Detection,
    *,
    seeds: int,
    workers: int = 1,
    engine: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[VerifyRow]:
    """Simulate ``seeds`` runs and compare their detection-by-iteration with ``detection``."""
    bundle = verified_bundle(s)
    blocks = [
        list(range(SEED_BASE + start, SEED_BASE + min(start + 10, seeds))) for start in range(0, seeds, 10)
    ]
    found: list[int | None] = []
    if workers <= 1:
        for block in blocks:
            found += _detections(bundle, s.strategy, s.params, block, engine)
            if progress is not None:
                progress(len(block))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_detections, bundle, s.strategy, s.params, b, engine) for b in blocks]
            for block, f in zip(blocks, futures, strict=True):
                found += f.result()  # in submission order: the result does not depend on the workers
                if progress is not None:
                    progress(len(block))
    rows = []
    for r in detection.rows:
        p = sum(at is not None and at <= r.iteration for at in found) / len(found)
        rows.append(VerifyRow(r.iteration, r.detected, p, math.sqrt(max(p * (1 - p), 1e-12) / len(found))))
    return rows


def informative(rows: Sequence[VerifyRow]) -> list[VerifyRow]:
    """The iterations worth comparing: where either rate is strictly between 2% and 98% and
    something changed since the iteration before (once every rollout has decided, rows repeat)."""
    out = []
    for i, r in enumerate(rows):
        same = i > 0 and (r.predicted, r.simulated) == (rows[i - 1].predicted, rows[i - 1].simulated)
        if not same and (0.02 < r.predicted < 0.98 or 0.02 < r.simulated < 0.98):
            out.append(r)
    return out
