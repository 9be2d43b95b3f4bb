"""Views of a run's records: trace.csv rows, status.yaml text, and the ``--check`` comparison.

Everything here reads :class:`~simkit.records.RunResult` and writes nothing but strings, so the
same views serve ``simkit run``, ``simkit replay`` and live journals. Number formatting is fixed
(``repr`` of floats) so that the same run gives byte-identical files.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from typing import Any

import yaml

from simkit.errors import CheckFailed, Location, SpecError
from simkit.records import RunResult, rfc3339

EXPECT_KEYS = {
    "winner": "the winner of the last iteration (null for none)",
    "versionRecommendedForPromotion": "status.versionRecommendedForPromotion",
    "finalWeights": "weights read back after the run, per version",
    "completed": "Completed condition",
    "failed": "Failed condition",
    "rolledBack": "whether the run ended with a rollback",
    "completedIterations": "status.completedIterations",
    "stage": "status.stage",
}


def _num(v: float | None) -> str:
    if v is None:
        return ""
    if math.isnan(v):
        return "NaN"
    return repr(float(v))


def trace_csv(result: RunResult) -> str:
    """One row per iteration and version: metric values, assessments, winner, weights, verdict."""
    metrics = list(result.iterations[0].readings) if result.iterations else []
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(
        [
            "iteration",
            "time",
            "elapsed",
            "version",
            *metrics,
            "assessments",
            "feasible",
            "winner",
            "weight_before",
            "weight_recommended",
            "weight_after",
            "verdict",
            "reason",
            "vrfp",
        ]
    )
    for rec in result.iterations:
        d = rec.decision
        before, after = dict(rec.weights_before or ()), dict(rec.weights_after or ())
        for version in result.versions:
            flags = d.assessments.get(version, ())
            feasible = all(flags) if flags else ""
            w.writerow(
                [
                    rec.iteration,
                    rfc3339(rec.time),
                    rec.elapsed,
                    version,
                    *[_num(rec.readings[m][version].value) for m in metrics],
                    ";".join("true" if f else "false" for f in flags),
                    str(feasible).lower() if flags else "",
                    d.winner or "",
                    before.get(version, ""),
                    (d.weights or {}).get(version, ""),
                    after.get(version, ""),
                    d.verdict,
                    d.reason,
                    rec.vrfp,
                ]
            )
    return out.getvalue()


def status_yaml(result: RunResult) -> str:
    return yaml.safe_dump(dict(result.experiment_object), sort_keys=False, allow_unicode=True, width=120)


def outcome(result: RunResult) -> dict[str, Any]:
    """The observable outcome, with the names the scenario's ``expect`` block uses."""
    return {
        "winner": result.winner,
        "versionRecommendedForPromotion": result.vrfp,
        "finalWeights": dict(result.final_weights or {}),
        "completed": result.completed,
        "failed": result.failed,
        "rolledBack": result.rolled_back,
        "completedIterations": result.status.get("completedIterations", 0),
        "stage": result.stage,
    }


def check(result: RunResult, expect: Mapping[str, Any], where: Location) -> list[str]:
    """Mismatches between the run and ``expect`` (empty when it holds); unknown keys are errors."""
    for key in expect:
        if key not in EXPECT_KEYS:
            raise SpecError(
                where, f"spec.expect.{key}", f"unknown expectation (known: {', '.join(sorted(EXPECT_KEYS))})"
            )
    got = outcome(result)
    problems = []
    for key, want in expect.items():
        have = got[key]
        if key == "finalWeights":
            want = {str(k): int(v) for k, v in (want or {}).items()}
        if have != want:
            problems.append(f"{key}: expected {want!r}, got {have!r}")
    return problems


def require(result: RunResult, expect: Mapping[str, Any], where: Location) -> None:
    problems = check(result, expect, where)
    if problems:
        raise CheckFailed(f"{where.file}: outcome differs from spec.expect: " + "; ".join(problems))
