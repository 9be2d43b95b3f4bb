"""``simkit replay``: the experiment loop over recorded history.

The loop is the one in :mod:`simkit.control`; only its ports differ. The metric fetcher's
``httpx.Client`` talks to the in-process Prometheus API over the recorded TSDB (so every Metric
query, ``increase`` and ``histogram_quantile`` included, is evaluated on the recorded raw samples),
:class:`ReplayClock` moves through recorded time, :class:`ReplayActuator` remembers the policy's
weights and applies them to nothing, and actions are recorded, never run.

What a replay shows: what each policy would have **decided** on the observed traffic. Where the
policy sent a version more traffic than the recording did (its weight above the recorded share's
99.9 % interval), the observations differ from what it would have **caused**; each iteration
says so in its ``basis`` (``beyond-record``). With ``counterfactual=True`` the recorded counters
are thinned to the policy's weights where that is sound (see :mod:`simkit.replay.counterfactual`).

A :class:`Replayer` parses the recording once; every strategy run reuses its TSDB.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from simkit.actions import command_line
from simkit.control import Ports, Prepared, run_experiment
from simkit.errors import BackendError, DataError
from simkit.metrics import MetricFetcher
from simkit.ports import ActionOutcome, ObjectPatch, WeightRef
from simkit.prepare import prepare
from simkit.promql.api import PrometheusAPITransport
from simkit.records import IterationRecord, RunResult, rfc3339
from simkit.replay.recording import Recording
from simkit.replay.selectors import MetricSelectors, metric_selectors
from simkit.replay.traffic import Traffic
from simkit.spec.pointers import weight_at
from simkit.spec.rounding import largest_remainder
from simkit.spec.streams import child_rng
from simkit.strategies.base import create

INITIAL_WINDOW = 60.0  # seconds of traffic before --at that tell the recorded weights


class ReplayClock:
    """Recorded time: starts at ``start``; ``sleep`` moves on and tells the listeners.

    ``delay`` is what the recorded controller added to each iteration (the sim's
    ``spec.controller.iterationDelay``): a real etc3 run's iterations are ``intervalSeconds`` plus
    its reconcile time apart, and the replay must query at the same instants to decide the same."""

    def __init__(self, start: float, delay: float = 0.0, times: Sequence[float] = ()) -> None:
        self.t = start
        self.delay = delay
        self.times = list(times)  # the instants of the next iterations, when they are known
        self.listeners: list[Callable[[float], None]] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t = self.times.pop(0) if self.times else self.t + seconds + self.delay
        for listen in self.listeners:
            listen(self.t)


class ReplayActuator:
    """Remembers the policy's weights (and since when); changes nothing anywhere."""

    def __init__(self, refs: Sequence[WeightRef], initial: Mapping[str, int], clock: ReplayClock) -> None:
        self.by_pointer = {(r.obj, r.pointer): r.version for r in refs}
        self.weights = dict(initial)
        self.clock = clock
        self.history: list[tuple[float, dict[str, int]]] = [(float("-inf"), dict(initial))]

    def read(self, refs: Sequence[WeightRef]) -> dict[str, int]:
        return {r.version: int(self.weights.get(r.version, 0)) for r in refs}

    def apply(self, patches: Sequence[ObjectPatch]) -> None:
        for patch in patches:
            for op in patch.ops:
                version = self.by_pointer.get((patch.obj, str(op.get("path"))))
                if version is None:
                    raise BackendError(f"{patch.obj}: no weightObjRef points at {op.get('path')}")
                self.weights[version] = int(op["value"])
        self.history.append((self.clock.now(), dict(self.weights)))

    def average(self, lo: float, hi: float) -> dict[str, float]:
        """The time-average of the weights in effect over (lo, hi]: what the router's expected
        share was over an interval that may span weight changes."""
        if hi <= lo:
            return {v: float(w) for v, w in self.at(hi).items()}
        out: dict[str, float] = {}
        cuts = [lo, *[since for since, _ in self.history if lo < since < hi], hi]
        for a, b in zip(cuts, cuts[1:], strict=False):
            for v, w in self.at((a + b) / 2.0).items():
                out[v] = out.get(v, 0.0) + w * (b - a) / (hi - lo)
        return out

    def at(self, t: float) -> dict[str, int]:
        """The weights in effect at ``t`` (a change made at t applies after t)."""
        current = self.history[0][1]
        for since, weights in self.history:
            if since < t:
                current = weights
        return current


class RecordedActions:
    """Records each action's rendered commands; nothing is executed during a replay."""

    def run(
        self, action: str, tasks: Sequence[Mapping[str, Any]], variables: Mapping[str, str]
    ) -> ActionOutcome:
        details = {"commands": [command_line(t) for t in tasks], "applied": [], "not_applied": []}
        return ActionOutcome(action, tuple(tasks), ok=True, message="", executed=False, details=details)


@dataclass(frozen=True)
class IterationBasis:
    """How far one iteration's observations are what the policy would have caused."""

    iteration: int
    time: float
    policy: Mapping[str, int]  # weights in effect during the interval that ended here
    recorded: Mapping[str, float | None]  # recorded share (%) in that interval
    basis: str  # recorded | thinned | beyond-record | unknown
    note: str = ""


@dataclass(frozen=True)
class ReplayRun:
    strategy: str
    result: RunResult
    prepared: Prepared
    basis: tuple[IterationBasis, ...]
    counterfactual: bool
    seed: int
    notes: tuple[str, ...] = field(default=())


class Replayer:
    """One parsed recording, ready to replay any number of strategies over it."""

    def __init__(self, recording: Recording, seed: int = 1, iteration_delay: float = 0.0) -> None:
        self.recording = recording
        self.seed = seed
        self.iteration_delay = iteration_delay
        docs = recording.documents()
        self.documents = docs
        self.prepared = prepare(recording.experiment_document(), docs)
        self.selectors: list[MetricSelectors] = metric_selectors(self.prepared)
        self.traffic = Traffic(recording.db, self.selectors, self.prepared.plan.versions)
        self.step = recording.header.step or 15.0

    # -- checks ----------------------------------------------------------------------------------
    def check_metrics(self, strategy: str) -> None:
        """A metric whose series the recording lacks entirely cannot be replayed: bad input."""
        present = set(self.recording.db.names())
        for ms in self.selectors:
            missing = sorted(ms.names() - present)
            if missing:
                raise DataError(
                    f"{self.recording.path}: strategy {strategy} needs metric {ms.metric}, but the "
                    f"recording has no series named {missing[0]} (record it again with that Metric)"
                )

    def check_time(self, at: float, until: float | None = None) -> float:
        """The window's end: ``until`` (inside the recording, after ``at``) or the recording's end."""
        h = self.recording.header
        if not h.start <= at <= h.end:
            raise DataError(
                f"{self.recording.path}: --at {at:.3f} is outside the recording "
                f"({h.start:.3f} to {h.end:.3f})"
            )
        if until is None:
            return h.end
        if not at <= until <= h.end:
            raise DataError(
                f"{self.recording.path}: --until {until:.3f} must lie between --at {at:.3f} and the "
                f"recording's end {h.end:.3f}"
            )
        return until

    def stop_note(self, result: RunResult, until: float, by_user: bool) -> str:
        plan = self.prepared.plan
        done = len(result.iterations)
        nxt = (
            (result.iterations[-1].time if result.iterations else until)
            + plan.interval_seconds
            + self.iteration_delay
        )
        why = "the --until window ends" if by_user else "the recording ends"
        return (
            f"stopped after iteration {done} of {plan.iterations}: {why} at {rfc3339(until)} and iteration "
            f"{done + 1} would run at {rfc3339(nxt)}, with no data to observe"
            + ("" if by_user else " (record a longer range to replay further)")
        )

    # -- weights ---------------------------------------------------------------------------------
    def initial_weights(self, at: float) -> tuple[dict[str, int], str]:
        """From the weightObjRef objects when the recording holds them, else the recorded shares."""
        refs = self.prepared.refs
        found: dict[str, int] = {}
        for ref in refs:
            for d in self.documents:
                if (
                    d.kind == ref.obj.kind
                    and d.name == ref.obj.name
                    and (d.namespace or self.prepared.experiment.namespace) == ref.obj.namespace
                ):
                    with contextlib.suppress(ValueError):  # unreadable: fall back to the recorded shares
                        found[ref.version] = weight_at(d.raw, ref.pointer)
        if refs and len(found) == len(refs):
            return found, "initial weights from the recorded manifests"
        if not self.traffic.known:
            raise DataError(
                f"{self.recording.path}: cannot tell the initial weights: the recording holds neither "
                "the weightObjRef objects nor request counters"
            )
        lo, hi = self.traffic.bracket(at - max(INITIAL_WINDOW, 4 * self.step), at)
        shares = self.traffic.shares(lo, hi)
        pct = {v: (s.percent or 0.0) for v, s in shares.items()}
        if not any(pct.values()):
            pct = {v: (100.0 if v == self.prepared.plan.baseline else 0.0) for v in pct}
        return largest_remainder(pct), "initial weights inferred from the recorded traffic shares"

    # -- one strategy ----------------------------------------------------------------------------
    def run(
        self,
        strategy: str,
        at: float | None = None,
        counterfactual: bool = False,
        params: Mapping[str, Any] | None = None,
        observer: Callable[[IterationRecord], None] | None = None,
        label: str | None = None,
        until: float | None = None,
        times: Sequence[float] = (),
    ) -> ReplayRun:
        """Replay one strategy from ``at`` while there is data (to ``until`` or the recording's end;
        a rollout whose recording ends early is replayed up to there and says so in its notes);
        ``label`` names it in tables (default: its name). ``times``: the instants of the iterations
        after the first, when known (a live run's journal), instead of the plan's cadence."""
        from simkit.replay.counterfactual import Thinner

        at = self.recording.header.start if at is None else at
        end = self.check_time(at, until)
        self.check_metrics(strategy)
        plan = self.prepared.plan
        policy = create(strategy, plan, params, self.prepared.experiment.where)
        initial, how = self.initial_weights(at)
        clock = ReplayClock(at, self.iteration_delay, times)
        actuator = ReplayActuator(self.prepared.refs, initial, clock)
        thinner: Thinner | None = None
        db = self.recording.db
        if counterfactual:
            thinner = Thinner(
                db, self.selectors, self.traffic, plan.versions, child_rng(self.seed, "thinning", strategy)
            )
            thinner.advance(at, actuator.average)
            clock.listeners.append(lambda t: thinner.advance(t, actuator.average) if thinner else None)
            db = thinner.derived
        client = httpx.Client(transport=PrometheusAPITransport(db, clock.now))
        fetcher = MetricFetcher(client, rng=child_rng(self.seed, "mock-metrics"))
        ports = Ports(clock, actuator, RecordedActions(), fetcher)
        basis: list[IterationBasis] = []
        previous = [at]

        def observe(rec: IterationRecord) -> None:
            basis.append(self._basis(rec, previous[0], actuator, thinner))
            previous[0] = rec.time
            if observer is not None:
                observer(rec)

        stopped = [False]

        def beyond_data() -> bool:  # checked before each iteration: no data past the window's end
            stopped[0] = clock.now() > end + 1e-9
            return stopped[0]

        with client:
            result = run_experiment(
                self.prepared,
                policy,
                ports,
                child_rng(self.seed, "strategy", strategy),
                observe,
                should_stop=beyond_data,
            )
        notes: tuple[str, ...] = (how,)
        if stopped[0]:
            note = self.stop_note(result, end, until is not None)
            result = stopped_result(result, note)
            notes += (note,)
        return ReplayRun(
            label or strategy, result, self.prepared, tuple(basis), counterfactual, self.seed, notes
        )

    def _basis(
        self, rec: IterationRecord, since: float, actuator: ReplayActuator, thinner: Any
    ) -> IterationBasis:
        policy = actuator.at(rec.time)
        if rec.iteration == 1 or not self.traffic.known:
            return IterationBasis(
                rec.iteration, rec.time, policy, {}, "recorded" if self.traffic.known else "unknown"
            )
        lo, hi = self.traffic.bracket(since, rec.time)
        shares = self.traffic.shares(lo, hi)
        recorded = {v: s.percent for v, s in shares.items()}
        expected = actuator.average(lo, hi)
        above = [v for v, s in shares.items() if s.total > 0 and expected.get(v, 0.0) > s.bounds()[1] + 1e-9]
        if thinner is not None:
            state = thinner.state_between(since, rec.time)
            if state != "recorded" or above:
                return IterationBasis(
                    rec.iteration,
                    rec.time,
                    policy,
                    recorded,
                    "beyond-record" if above or state == "beyond-record" else state,
                    _above_note(above, expected, recorded),
                )
            return IterationBasis(rec.iteration, rec.time, policy, recorded, "recorded")
        if above:
            return IterationBasis(
                rec.iteration,
                rec.time,
                policy,
                recorded,
                "beyond-record",
                _above_note(above, expected, recorded),
            )
        return IterationBasis(rec.iteration, rec.time, policy, recorded, "recorded")


def stopped_result(result: RunResult, note: str) -> RunResult:
    """The run as far as the data went: still Running (neither completed nor failed), its
    Completed condition saying why the replay stopped (the loop's should_stop marks it Failed)."""
    obj = copy.deepcopy(dict(result.experiment_object))
    status = obj.get("status") or {}
    conditions = []
    for c in status.get("conditions") or []:
        if c.get("type") == "Failed":
            c = {**c, "status": "False", "reason": "", "message": ""}
        elif c.get("type") == "Completed":
            c = {**c, "status": "False", "reason": "RecordingEnded", "message": note}
        conditions.append(c)
    status["conditions"] = conditions
    status["stage"] = "Running"
    status["message"] = f"RecordingEnded: {note}"
    obj["status"] = status
    return dataclasses.replace(
        result,
        experiment_object=obj,
        completed=False,
        failed=False,
        stage="Running",
        message=status["message"],
    )


def _above_note(
    above: Sequence[str], policy: Mapping[str, float], recorded: Mapping[str, float | None]
) -> str:
    return "; ".join(f"{v} at {policy.get(v, 0):.0f}% > recorded {recorded.get(v) or 0:.1f}%" for v in above)
