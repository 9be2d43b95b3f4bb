"""Argo Rollouts' canary steps and analysis semantics (``analysis/analysis.go``, ``utils/evaluate``).

``steps`` run in order, as in a Rollout's ``spec.strategy.canary.steps``:

* ``{setWeight: N}`` sets the candidate's weight and completes at once;
* ``{pause: {duration: S}}`` (seconds or ``"1m"``) holds the weight ``ceil(S / intervalSeconds)``
  iterations; ``{pause: {}}`` waits for a human in Argo and is simulated as a hold of
  ``pauseIterations`` iterations (default 1) after which the simulated human promotes;
* ``{analysis: {metrics: [...]}}`` is an inline, blocking AnalysisRun. Each iteration takes one
  measurement of each of its metrics. A measurement never uses an interval whose split was changed
  by the same decision: right after a ``setWeight`` the first measurement is taken one iteration
  later.

Optional background analysis, ``analysis: {metrics: [...], startingStep: N}`` at the top level of
the params, measures every iteration from step N on, as ``strategy.canary.analysis`` does.

Each analysis metric::

    {name: errors, metric: iter8-seldon/error-rate, version: candidate, successCondition:
     "result[0] <= 0.01", failureCondition: {upper: 0.05}, failureLimit: 0, inconclusiveLimit: 0,
     consecutiveErrorLimit: 4, consecutiveSuccessLimit: 0, count: 3, interval: 1}

A condition is either ``{upper: x}`` / ``{lower: x}`` / both, the acceptable range of the result
(limits inclusive; as a successCondition it holds inside the range, as a failureCondition it holds
outside it, so ``failureCondition: {upper: 0.05}`` fails a result above 0.05), or a small
expression over ``result`` (the measured value) and ``baseline`` (the same metric for the baseline
version): numbers, ``+ - * /``, comparisons, ``and``/``or``/``not`` (Argo's ``&&``, ``||``,
``!`` are accepted), ``result[0]``, ``abs()``, ``isNaN()``, ``isInf()``; nothing else.

Argo's rules, reproduced exactly:

* measurement: no conditions → Successful; only success → Failed unless true; only failure →
  Successful unless true; both → Failed if the failure condition holds (failure wins), else
  Successful if the success condition holds, else **Inconclusive**. A missing value or an
  expression that cannot be evaluated is an **Error** measurement; errors do not count towards
  ``count`` and any other outcome resets the consecutive-error counter.
* metric: Failed if ``failed > failureLimit`` (strictly greater: the default 0 fails on the first
  failed measurement; -1 disables), Inconclusive if ``inconclusive > inconclusiveLimit``, Error if
  ``consecutiveErrors > consecutiveErrorLimit`` (default 4), later rules overriding earlier ones
  (Error > Inconclusive > Failed). Successful once ``consecutiveSuccess >= consecutiveSuccessLimit``
  when that limit is > 0. When ``count`` measurements are done (``EffectiveCount``: ``count``, else
  indefinite if ``interval`` is given, else 1): Inconclusive if both limits apply, Failed if only the
  consecutive-success limit applies, else Successful.
* run: the worst metric phase wins (Failed > Error > Inconclusive > Running > Successful).
* rollout: Failed or Error aborts (rollback: the baseline gets 100%); Inconclusive pauses (the
  weight is held for ``pauseIterations`` iterations, then the simulated human promotes past it).
  When all steps are done the candidate is promoted to 100%.
"""

from __future__ import annotations

import ast
import copy
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from simkit.spec.quantity import parse_duration
from simkit.strategies.base import Decision, Observation, Plan, Verdict, register
from simkit.strategies.roles import Params, check_number, param_error, single_candidate, split, value

# Phases ranked by severity, as in Argo's analysisutil.IsWorse
_RANK = {"Successful": 0, "Running": 1, "Inconclusive": 2, "Error": 3, "Failed": 4}


class _EvalError(Exception):
    """A condition that cannot be evaluated on this measurement (Argo: an Error measurement)."""


@dataclass(frozen=True)
class Condition:
    text: str
    tree: ast.Expression | None = None
    upper: float | None = None
    lower: float | None = None
    outside: bool = False  # a failureCondition given as limits holds outside them

    def holds(self, result: float, baseline: float | None) -> bool:
        if self.tree is None:
            inside = (self.upper is None or result <= self.upper) and (
                self.lower is None or result >= self.lower
            )
            return inside != self.outside
        return bool(_evaluate(self.tree.body, result, baseline))


@dataclass(frozen=True)
class AnalysisMetric:
    name: str
    metric: str
    on_baseline: bool
    success: Condition | None
    failure: Condition | None
    failure_limit: int
    inconclusive_limit: int
    consecutive_error_limit: int
    consecutive_success_limit: int
    count: int | None  # None = indefinite


@register("argo")
class ArgoStrategy:
    """Argo Rollouts canary: setWeight/pause/analysis steps with Argo's strict-limit analysis rules."""

    name = "argo"

    def __init__(self, plan: Plan, params: Mapping[str, Any]) -> None:
        p = Params(self.name, params)
        self.plan = plan
        self.baseline, self.canary = single_candidate(plan, self.name)
        self.pause_iterations = p.integer("pauseIterations", 1, minimum=1)
        raw_steps = p.raw("steps")
        if not isinstance(raw_steps, list) or not raw_steps:
            raise param_error(
                "steps",
                "needs a non-empty list of {setWeight}, {pause} and {analysis} steps; "
                "argo has no default steps: give them in spec.strategy.params or in a "
                "--strategy-params file (as scenarios/suite/strategies.yaml does)",
            )
        self.steps = [self._step(i, s) for i, s in enumerate(raw_steps)]
        background = p.raw("analysis")
        self.background: tuple[AnalysisMetric, ...] = ()
        self.starting_step = 0
        if background is not None:
            if not isinstance(background, Mapping) or set(background) - {"metrics", "startingStep"}:
                raise param_error("analysis", "must be {metrics: [...], startingStep: N}")
            self.background = _metrics("analysis", background.get("metrics"))
            self.starting_step = int(
                check_number(
                    "analysis.startingStep",
                    background.get("startingStep", 0),
                    minimum=0,
                    maximum=len(self.steps),
                )
            )
        p.finish()

    def _step(self, i: int, raw: Any) -> tuple[str, Any]:
        where = f"steps[{i}]"
        if not isinstance(raw, Mapping) or len(raw) != 1:
            raise param_error(where, "must have exactly one of setWeight, pause, analysis")
        kind, body = next(iter(raw.items()))
        if kind == "setWeight":
            return kind, int(check_number(f"{where}.setWeight", body, minimum=0, maximum=100))
        if kind == "pause":
            if body is None or body == {}:
                return kind, self.pause_iterations
            if not isinstance(body, Mapping) or set(body) != {"duration"}:
                raise param_error(f"{where}.pause", "must be {} or {duration: seconds}")
            duration = body["duration"]
            try:
                seconds = (
                    parse_duration(duration)
                    if isinstance(duration, str)
                    else check_number(f"{where}.pause.duration", duration, minimum=0)
                )
            except ValueError as err:
                raise param_error(f"{where}.pause.duration", str(err)) from None
            return kind, int(math.ceil(seconds / self.plan.interval_seconds - 1e-9))
        if kind == "analysis":
            if not isinstance(body, Mapping) or set(body) != {"metrics"}:
                raise param_error(f"{where}.analysis", "must be {metrics: [...]}")
            return kind, _metrics(f"{where}.analysis", body["metrics"])
        raise param_error(where, f"unknown step {kind!r}; known: setWeight, pause, analysis")

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        st = copy.deepcopy(dict(observation.state))  # never mutate the previous decision's state
        index, weight = int(st.get("step", 0)), int(st.get("weight", 0))
        hold = st.get("hold")  # iterations left in a pause, or None
        run = st.get("run")  # inline AnalysisRun counters
        bg = st.get("background") or {}
        changed = False
        notes: list[str] = []

        def out(reason: str, verdict: Verdict = "continue", new_weight: int | None = None) -> Decision:
            w = weight if new_weight is None else new_weight
            return Decision(
                weights=split(self.plan, self.canary, w),
                winner=self.canary if verdict == "promote" else None,
                verdict=verdict,
                reason="; ".join([*notes, reason]),
                state={
                    "step": index,
                    "weight": w,
                    "hold": hold,
                    "run": run,
                    "background": bg,
                    "bgPaused": bg_paused,
                },
            )

        bg_paused = st.get("bgPaused")  # iterations left in a pause caused by background analysis
        if bg_paused is not None:
            bg_paused -= 1
            if bg_paused > 0:
                return out(f"paused after inconclusive background analysis, {bg_paused} iteration(s) left")
            bg_paused, bg = None, {}  # the simulated human resumes; a fresh background run starts
        if self.background and index >= self.starting_step:
            phase, detail = _measure_run(self.background, bg, observation, self.canary, self.baseline)
            if phase in ("Failed", "Error"):
                return out(f"background analysis {phase}: {detail}; aborting", "rollback", 0)
            if phase == "Inconclusive":
                bg_paused = self.pause_iterations
                return out(
                    f"background analysis Inconclusive: {detail}; paused at weight {weight} "
                    f"for {bg_paused} iteration(s)"
                )
            notes.append(f"background analysis {phase}")

        if hold is not None:  # a pause (timed, indefinite, or after an inconclusive analysis)
            hold -= 1
            if hold > 0:
                return out(f"paused at step {index + 1}/{len(self.steps)}, {hold} iteration(s) left")
            hold, run, index = None, None, index + 1  # a paused analysis step is promoted past
        while index < len(self.steps):
            kind, body = self.steps[index]
            if kind == "setWeight":
                changed, weight, index = changed or body != weight, body, index + 1
                continue
            if kind == "pause":
                if body > 0:
                    hold = body
                    return out(
                        f"step {index + 1}/{len(self.steps)}: pause for {body} iteration(s) at weight {weight}"
                    )
                index += 1
                continue
            if run is None:
                run = {}
                if changed:
                    return out(
                        f"step {index + 1}/{len(self.steps)}: analysis starts measuring next iteration"
                    )
            phase, detail = _measure_run(body, run, observation, self.canary, self.baseline)
            if phase in ("Failed", "Error"):
                return out(f"step {index + 1} analysis {phase}: {detail}; aborting", "rollback", 0)
            if phase == "Inconclusive":
                hold = self.pause_iterations
                return out(
                    f"step {index + 1} analysis Inconclusive: {detail}; paused for {hold} iteration(s)"
                )
            if phase == "Running":
                return out(f"step {index + 1}/{len(self.steps)} analysis running: {detail}")
            notes.append(f"step {index + 1} analysis Successful")
            run, index = None, index + 1
        return out(f"all {len(self.steps)} steps done: promoting {self.canary}", "promote", 100)


def _metrics(where: str, raw: Any) -> tuple[AnalysisMetric, ...]:
    if not isinstance(raw, list) or not raw:
        raise param_error(f"{where}.metrics", "needs a non-empty list of metrics")
    known = {
        "name",
        "metric",
        "version",
        "successCondition",
        "failureCondition",
        "failureLimit",
        "inconclusiveLimit",
        "consecutiveErrorLimit",
        "consecutiveSuccessLimit",
        "count",
        "interval",
    }
    out = []
    for i, m in enumerate(raw):
        at = f"{where}.metrics[{i}]"
        if not isinstance(m, Mapping) or not isinstance(m.get("metric"), str):
            raise param_error(at, "must be a mapping with a metric reference under 'metric'")
        if set(m) - known:
            raise param_error(
                f"{at}.{sorted(set(m) - known)[0]}", f"unknown key; known: {', '.join(sorted(known))}"
            )
        version = m.get("version", "candidate")
        if version not in ("candidate", "baseline"):
            raise param_error(f"{at}.version", "must be candidate or baseline")

        def limit(key: str, default: int, at: str = at, m: Mapping[str, Any] = m) -> int:
            return int(check_number(f"{at}.{key}", m.get(key, default), minimum=-1))

        count = m.get("count")
        if count is None:
            count = None if "interval" in m else 1
        else:
            count = int(check_number(f"{at}.count", count, minimum=1))
        out.append(
            AnalysisMetric(
                name=str(m.get("name", m["metric"])),
                metric=m["metric"],
                on_baseline=version == "baseline",
                success=_condition(f"{at}.successCondition", m.get("successCondition")),
                failure=_condition(f"{at}.failureCondition", m.get("failureCondition"), outside=True),
                failure_limit=limit("failureLimit", 0),
                inconclusive_limit=limit("inconclusiveLimit", 0),
                consecutive_error_limit=limit("consecutiveErrorLimit", 4),
                consecutive_success_limit=limit("consecutiveSuccessLimit", 0),
                count=count,
            )
        )
    return tuple(out)


def _measure_run(
    metrics: tuple[AnalysisMetric, ...],
    run: dict[str, Any],
    observation: Observation,
    canary: str,
    baseline: str,
) -> tuple[str, str]:
    """Take one measurement of every non-finished metric; return the run phase and a summary."""
    worst, details = "Successful", []
    for m in metrics:
        c = run.setdefault(
            m.name,
            {
                "n": 0,
                "failed": 0,
                "inconclusive": 0,
                "consecutiveErrors": 0,
                "consecutiveSuccess": 0,
                "phase": "Running",
            },
        )
        if c["phase"] == "Running":
            outcome = _measurement(m, observation, canary, baseline)
            c["n"] += outcome != "Error"  # as Argo's metricResult.Count: errors are not counted
            c["failed"] += outcome == "Failed"
            c["inconclusive"] += outcome == "Inconclusive"
            c["consecutiveErrors"] = c["consecutiveErrors"] + 1 if outcome == "Error" else 0
            c["consecutiveSuccess"] = c["consecutiveSuccess"] + 1 if outcome == "Successful" else 0
            c["phase"] = _metric_phase(m, c)
            details.append(
                f"{m.name}: {outcome} measurement -> metric {c['phase']} "
                f"(failed {c['failed']}/{m.failure_limit}, inconclusive {c['inconclusive']}/"
                f"{m.inconclusive_limit}, consecutive errors {c['consecutiveErrors']}/"
                f"{m.consecutive_error_limit})"
            )
        if _RANK[c["phase"]] > _RANK[worst]:
            worst = c["phase"]
    return worst, "; ".join(details)


def _measurement(m: AnalysisMetric, observation: Observation, canary: str, baseline: str) -> str:
    result = value(observation, m.metric, baseline if m.on_baseline else canary)
    if result is None:
        return "Error"
    base = value(observation, m.metric, baseline)
    try:
        failed = m.failure is not None and m.failure.holds(result, base)
        if m.failure is not None and m.success is None:
            return "Failed" if failed else "Successful"
        succeeded = m.success is None or m.success.holds(result, base)
    except _EvalError:
        return "Error"
    if m.failure is None:
        return "Successful" if succeeded else "Failed"
    if failed:
        return "Failed"
    return "Successful" if succeeded else "Inconclusive"


def _metric_phase(m: AnalysisMetric, c: Mapping[str, int]) -> str:
    """assessMetricStatus / assessMetricFailureInconclusiveOrError, strict ``>`` limits."""
    phase = ""
    if m.failure_limit >= 0 and c["failed"] > m.failure_limit:
        phase = "Failed"
    if m.inconclusive_limit >= 0 and c["inconclusive"] > m.inconclusive_limit:
        phase = "Inconclusive"
    if m.consecutive_error_limit >= 0 and c["consecutiveErrors"] > m.consecutive_error_limit:
        phase = "Error"
    if phase:
        return phase
    if m.consecutive_success_limit > 0 and c["consecutiveSuccess"] >= m.consecutive_success_limit:
        return "Successful"
    if m.count is not None and c["n"] >= m.count:
        failure_applies = m.failure_limit >= 0
        success_applies = m.consecutive_success_limit > 0
        if failure_applies and success_applies:
            return "Inconclusive"
        if success_applies:
            return "Failed"
        return "Successful"
    return "Running"


# --- a tiny, safe expression language over `result` and `baseline` -------------------------------

_FUNCS: dict[str, Callable[[float], Any]] = {"abs": abs, "isNaN": math.isnan, "isInf": math.isinf}
_COMPARE = {
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
}
_ARITH = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}


def _condition(where: str, raw: Any, outside: bool = False) -> Condition | None:
    if raw is None:
        return None
    if isinstance(raw, Mapping):
        if not raw or set(raw) - {"upper", "lower"}:
            raise param_error(where, "must be an expression string or {upper, lower}")
        upper = check_number(f"{where}.upper", raw["upper"]) if "upper" in raw else None
        lower = check_number(f"{where}.lower", raw["lower"]) if "lower" in raw else None
        return Condition(text=str(dict(raw)), upper=upper, lower=lower, outside=outside)
    if not isinstance(raw, str):
        raise param_error(where, "must be an expression string or {upper, lower}")
    text = re.sub(r"!(?!=)", " not ", raw.replace("&&", " and ").replace("||", " or "))
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        raise param_error(where, f"cannot parse {raw!r}: {err.msg}") from None
    for node in ast.walk(tree):
        _check_node(where, raw, node)
    return Condition(text=raw, tree=tree)


def _check_node(where: str, raw: str, node: ast.AST) -> None:
    allowed = (
        ast.Expression,
        ast.BoolOp,
        ast.And,
        ast.Or,
        ast.UnaryOp,
        ast.Not,
        ast.USub,
        ast.UAdd,
        ast.BinOp,
        ast.Compare,
        ast.Name,
        ast.Load,
        ast.Constant,
        ast.Call,
        ast.Subscript,
        *_COMPARE,
        *_ARITH,
    )
    if not isinstance(node, allowed):
        raise param_error(where, f"{raw!r}: {type(node).__name__} is not supported")
    if isinstance(node, ast.Name) and node.id not in ("result", "baseline", *_FUNCS):
        raise param_error(where, f"{raw!r}: unknown name {node.id!r}; use result or baseline")
    if isinstance(node, ast.Constant) and (
        isinstance(node.value, bool) or not isinstance(node.value, int | float)
    ):
        raise param_error(where, f"{raw!r}: only numbers are supported as constants")
    if isinstance(node, ast.Call) and (
        not isinstance(node.func, ast.Name)
        or node.func.id not in _FUNCS
        or len(node.args) != 1
        or node.keywords
    ):
        raise param_error(where, f"{raw!r}: only abs(x), isNaN(x), isInf(x) can be called")
    if isinstance(node, ast.Subscript) and not (
        isinstance(node.value, ast.Name)
        and node.value.id == "result"
        and isinstance(node.slice, ast.Constant)
        and node.slice.value == 0
    ):
        raise param_error(where, f"{raw!r}: only result[0] can be indexed")


def _evaluate(node: ast.AST, result: float, baseline: float | None) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id == "result":
            return result
        if node.id == "baseline":
            if baseline is None:
                raise _EvalError("no baseline value")
            return baseline
        raise _EvalError(node.id)
    if isinstance(node, ast.Subscript):
        return result
    if isinstance(node, ast.BoolOp):
        values = (bool(_evaluate(v, result, baseline)) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, result, baseline)
        return (
            (not operand)
            if isinstance(node.op, ast.Not)
            else (-operand if isinstance(node.op, ast.USub) else operand)
        )
    if isinstance(node, ast.BinOp):
        try:
            return _ARITH[type(node.op)](
                _evaluate(node.left, result, baseline), _evaluate(node.right, result, baseline)
            )
        except ZeroDivisionError:
            raise _EvalError("division by zero") from None
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, result, baseline)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _evaluate(right_node, result, baseline)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return _FUNCS[node.func.id](_evaluate(node.args[0], result, baseline))
    raise _EvalError(type(node).__name__)
