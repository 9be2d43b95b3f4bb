"""Bench outcomes do not depend on the engine: each strategy's pooled outcome rates on the standard
suite, simulated with ``events`` and with ``counts``, agree within their bootstrap 95% intervals
(the intervals overlap), for correct decisions, false promotions and false rollbacks.

The fast version (``make test``) runs iter8 and thompson on every suite scenario with 10 seeds;
``make bench`` runs all six strategies with 40 seeds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from simkit.bench.summary import summarize
from simkit.bench.sweep import run_sweep

SUITE = Path(__file__).resolve().parents[2] / "scenarios" / "suite"
RATES = ("correct", "false_promotion", "false_rollback")


def _disagreements(strategies: list[str], seeds: int) -> list[str]:
    tables = {}
    for engine in ("events", "counts"):
        result = run_sweep([SUITE], strategies, seeds, workers=2, engine=engine)
        assert set(result.runs["engine"]) == {engine}
        summary = summarize(result.runs, resamples=400)
        tables[engine] = summary[summary["scenario"] == "ALL"].set_index("strategy")
    bad = []
    for strategy in strategies:
        ev, co = tables["events"].loc[strategy], tables["counts"].loc[strategy]
        for rate in RATES:
            if ev[f"{rate}_hi"] < co[f"{rate}_lo"] or co[f"{rate}_hi"] < ev[f"{rate}_lo"]:
                bad.append(
                    f"{strategy} {rate}: events {ev[rate]:.3f} [{ev[f'{rate}_lo']:.3f}, {ev[f'{rate}_hi']:.3f}]"
                    f" vs counts {co[rate]:.3f} [{co[f'{rate}_lo']:.3f}, {co[f'{rate}_hi']:.3f}]"
                )
    return bad


@pytest.mark.timeout(900)
def test_suite_outcomes_agree_between_engines() -> None:
    bad = _disagreements(["iter8", "thompson"], 10)
    assert not bad, "\n".join(bad)


@pytest.mark.bench
@pytest.mark.timeout(3600)
def test_suite_outcomes_agree_between_engines_all_strategies() -> None:
    bad = _disagreements(["iter8", "flagger", "argo", "kayenta", "thompson", "sequential"], 40)
    assert not bad, "\n".join(bad)
