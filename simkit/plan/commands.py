"""``simkit plan SCENARIO --effect METRIC=DELTA [--traffic QPS] ...``: a rollout's power, before it runs.

Prints, per iteration of the scenario's Experiment under its policy, the probability that the
policy has detected the effect (rolled back) by then, with the closed-form power of a single
fixed-horizon look and of a confidence-sequence look; the expected time and candidate exposure to
detection; the step sizes the policy accepts with their detection within ``--budget``, and the
smallest one that reaches ``--power``. ``--verify N`` simulates N seeds and prints the planned
against the simulated detection rates.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from simkit.bench.sweep import strategy_params
from simkit.errors import SpecError
from simkit.formats import render
from simkit.plan.model import parse_effect
from simkit.plan.planner import Detection, plan_detection, recommend, setup
from simkit.plan.verify import VerifyRow, informative, verify
from simkit.spec.bundle import load_scenario
from simkit.strategies.options import single_strategy


def _rows(d: Detection) -> list[dict[str, Any]]:
    """Every iteration up to the last at which a rollout still decided (the rest repeat it)."""
    last = max(
        (
            i
            for i, r in enumerate(d.rows)
            if i == 0 or (r.detected, r.promoted) != (d.rows[i - 1].detected, d.rows[i - 1].promoted)
        ),
        default=0,
    )
    return [
        {
            "iteration": r.iteration,
            "elapsedSeconds": r.elapsed_s,
            "candidateWeight": r.candidate_weight,
            "candidateRequests": round(r.candidate_requests),
            "fixedHorizonPower": r.fixed_power,
            "sequentialPower": r.sequential_power,
            "detected": r.detected,
            "promoted": r.promoted,
        }
        for r in d.rows[: last + 2]
    ]


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:5.1f}%"


def _table(doc: dict[str, Any]) -> str:
    lines = [
        f"plan: {doc['scenario']} with {doc['strategy']} at {doc['traffic']:g} qps, effect "
        + ", ".join(doc["effects"]),
        "",
        "iteration  elapsed s  weight  cand. requests  1 look fixed  1 look seq.  detected by  promoted by",
    ]
    for r in doc["steps"]:
        lines.append(
            f"{r['iteration']:>9}  {r['elapsedSeconds']:>9g}  {r['candidateWeight']:>6}  "
            f"{r['candidateRequests']:>14,}  {_pct(r['fixedHorizonPower']):>13}  {_pct(r['sequentialPower']):>11}  "
            f"{_pct(r['detected']):>11}  {_pct(r['promoted']):>11}"
        )
    s = doc["summary"]
    time = "-" if s["meanTimeToDetectionSeconds"] is None else f"{s['meanTimeToDetectionSeconds']:.0f} s"
    lines += [
        "",
        f"detected by the end {_pct(s['detected'])}; mean time to detection {time}; mean candidate "
        f"requests before the decision {s['meanExposure']:,.0f}",
    ]
    if doc["schedules"]:
        lines += ["", f"stepWeight  detected within {doc['budgetSeconds']:g} s  mean exposure"]
        for f in doc["schedules"]:
            lines.append(
                f"{f['stepWeight']:>10}  {_pct(f['detectedWithinBudget']):>22}  {f['meanExposure']:>13,.0f}"
            )
        rec = doc["recommended"]
        lines.append(
            f"recommended: stepWeight {rec}"
            if rec is not None
            else f"no step size reaches {_pct(doc['power']).strip()} within the budget"
        )
    if doc.get("verify"):
        v = doc["verify"]
        lines += ["", f"verify: {v['seeds']} simulated seeds (iterations where either rate is in 2-98%)"]
        lines.append("iteration  planned  simulated  difference  simulated SE")
        for r in v["rows"]:
            lines.append(
                f"{r['iteration']:>9}  {_pct(r['planned'])}  {_pct(r['simulated']):>9}  "
                f"{100 * r['difference']:>+9.1f}pp  {100 * r['se']:>10.1f}pp"
            )
        lines.append(f"largest |difference| {100 * v['maxAbsDifference']:.1f} pp")
    return "\n".join(lines) + "\n"


def _verify_doc(rows: list[VerifyRow], seeds: int) -> dict[str, Any]:
    shown = informative(rows)
    return {
        "seeds": seeds,
        "rows": [
            {
                "iteration": r.iteration,
                "planned": r.predicted,
                "simulated": r.simulated,
                "difference": r.diff,
                "se": r.se,
            }
            for r in shown
        ],
        "maxAbsDifference": max((abs(r.diff) for r in shown), default=0.0),
    }


def cmd_plan(args: argparse.Namespace) -> int:
    if not args.effect:
        raise SpecError.from_cli("--effect", "give at least one METRIC=DELTA, e.g. error-rate=+0.003")
    effects = tuple(parse_effect(e) for e in args.effect)
    if len({e.metric for e in effects}) != len(effects):
        raise SpecError.from_cli("--effect", "give each metric once")
    for name, value, lo, hi in (
        ("--alpha", args.alpha, 0.0, 0.5),
        ("--power", args.power, 0.0, 1.0),
    ):
        if not lo < value < hi:
            raise SpecError.from_cli(name, f"must be between {lo:g} and {hi:g} (exclusive)")
    if args.paths < 100:
        raise SpecError.from_cli("--paths", "must be at least 100")
    if args.verify < 0:
        raise SpecError.from_cli("--verify", "must be 0 (off) or a number of seeds")
    bundle = load_scenario(args.scenario)
    option = single_strategy(args.strategy, args.strategy_params, None)
    chosen = bundle.scenario.spec.strategy
    name = option.name if option is not None else (chosen.name if chosen else "iter8")
    params = (
        option.params
        if option is not None and option.params is not None
        else strategy_params(Path(args.scenario)).get(name, dict(chosen.params) if chosen else {})
    )
    s = setup(bundle, strategy=name, params=params or {}, effects=effects, qps=args.traffic)
    detection = plan_detection(s, paths=args.paths, seed=args.seed, alpha=args.alpha)
    budget = args.budget * 60 if args.budget is not None else s.plan.iterations * s.plan.interval_seconds
    family, best = recommend(
        s, paths=args.paths, seed=args.seed, alpha=args.alpha, power=args.power, budget_s=budget
    )
    doc: dict[str, Any] = {
        "scenario": bundle.name,
        "strategy": name,
        "traffic": s.qps,
        "effects": [e.text for e in effects],
        "alpha": args.alpha,
        "power": args.power,
        "budgetSeconds": budget,
        "steps": _rows(detection),
        "summary": {
            "detected": detection.detected,
            "meanTimeToDetectionSeconds": detection.mean_time_s,
            "meanExposure": detection.mean_exposure,
        },
        "schedules": [
            {
                "stepWeight": d.step,
                "detectedWithinBudget": d.detected_within(budget),
                "meanExposure": d.mean_exposure,
            }
            for d in family
        ],
        "recommended": best.step if best is not None else None,
    }
    if args.verify:
        rows = verify(s, detection, seeds=args.verify, workers=args.workers or 1, engine=args.engine)
        doc["verify"] = _verify_doc(rows, args.verify)
    sys.stdout.write(_table(doc) if args.output == "table" else render(doc, args.output))
    return 0
