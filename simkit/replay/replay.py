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
from simkit.records import IterationRecord, RunResult
from simkit.replay.recording import Recording
from simkit.replay.selectors import MetricSelectors, metric_selectors
from simkit.replay.traffic import Traffic
from simkit.spec.pointers import weight_at
from simkit.spec.rounding import largest_remainder
from simkit.spec.streams import child_rng
from simkit.strategies.base import create

INITIAL_WINDOW = 60.0  # seconds of traffic before --at that tell the recorded weights


class ReplayClock:
    """Recorded time: starts at ``start``; ``sleep`` moves on and tells the listeners."""

    def __init__(self, start: float) -> None:
        self.t = start
        self.listeners: list[Callable[[float], None]] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds
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

    def run(self, action: str, tasks: Sequence[Mapping[str, Any]], variables: Mapping[str, str]) -> ActionOutcome:
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

    def __init__(self, recording: Recording, seed: int = 1) -> None:
        self.recording = recording
        self.seed = seed
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
                raise DataError(f"{self.recording.path}: strategy {strategy} needs metric {ms.metric}, but the "
                                f"recording has no series named {missing[0]} (record it again with that Metric)")

    def check_time(self, at: float) -> None:
        h, plan = self.recording.header, self.prepared.plan
        if not h.start <= at <= h.end:
            raise DataError(f"{self.recording.path}: --at {at:.3f} is outside the recording "
                            f"({h.start:.3f} to {h.end:.3f})")
        last = at + (plan.iterations - 1) * plan.interval_seconds
        if last > h.end + 1e-9:
            raise DataError(f"{self.recording.path}: {plan.iterations} iterations every {plan.interval_seconds:g}s "
                            f"from --at {at:.3f} need data until {last:.3f}, but the recording ends at {h.end:.3f}")

    # -- weights ---------------------------------------------------------------------------------
    def initial_weights(self, at: float) -> tuple[dict[str, int], str]:
        """From the weightObjRef objects when the recording holds them, else the recorded shares."""
        refs = self.prepared.refs
        found: dict[str, int] = {}
        for ref in refs:
            for d in self.documents:
                if (d.kind == ref.obj.kind and d.name == ref.obj.name
                        and (d.namespace or self.prepared.experiment.namespace) == ref.obj.namespace):
                    with contextlib.suppress(ValueError):  # unreadable: fall back to the recorded shares
                        found[ref.version] = weight_at(d.raw, ref.pointer)
        if refs and len(found) == len(refs):
            return found, "initial weights from the recorded manifests"
        if not self.traffic.known:
            raise DataError(f"{self.recording.path}: cannot tell the initial weights: the recording holds neither "
                            "the weightObjRef objects nor request counters")
        lo, hi = self.traffic.bracket(at - max(INITIAL_WINDOW, 4 * self.step), at)
        shares = self.traffic.shares(lo, hi)
        pct = {v: (s.percent or 0.0) for v, s in shares.items()}
        if not any(pct.values()):
            pct = {v: (100.0 if v == self.prepared.plan.baseline else 0.0) for v in pct}
        return largest_remainder(pct), "initial weights inferred from the recorded traffic shares"

    # -- one strategy ----------------------------------------------------------------------------
    def run(self, strategy: str, at: float | None = None, counterfactual: bool = False,
            params: Mapping[str, Any] | None = None,
            observer: Callable[[IterationRecord], None] | None = None, label: str | None = None) -> ReplayRun:
        """Replay one strategy from ``at``; ``label`` names it in tables (default: its name)."""
        from simkit.replay.counterfactual import Thinner

        at = self.recording.header.start if at is None else at
        self.check_time(at)
        self.check_metrics(strategy)
        plan = self.prepared.plan
        policy = create(strategy, plan, params, self.prepared.experiment.where)
        initial, how = self.initial_weights(at)
        clock = ReplayClock(at)
        actuator = ReplayActuator(self.prepared.refs, initial, clock)
        thinner: Thinner | None = None
        db = self.recording.db
        if counterfactual:
            thinner = Thinner(db, self.selectors, self.traffic, plan.versions, child_rng(self.seed, "thinning", strategy))
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

        with client:
            result = run_experiment(self.prepared, policy, ports, child_rng(self.seed, "strategy", strategy), observe)
        return ReplayRun(label or strategy, result, self.prepared, tuple(basis), counterfactual, self.seed, (how,))

    def _basis(self, rec: IterationRecord, since: float, actuator: ReplayActuator, thinner: Any) -> IterationBasis:
        policy = actuator.at(rec.time)
        if rec.iteration == 1 or not self.traffic.known:
            return IterationBasis(rec.iteration, rec.time, policy, {}, "recorded" if self.traffic.known else "unknown")
        lo, hi = self.traffic.bracket(since, rec.time)
        shares = self.traffic.shares(lo, hi)
        recorded = {v: s.percent for v, s in shares.items()}
        expected = actuator.average(lo, hi)
        above = [v for v, s in shares.items() if s.total > 0 and expected.get(v, 0.0) > s.bounds()[1] + 1e-9]
        if thinner is not None:
            state = thinner.state_between(since, rec.time)
            if state != "recorded" or above:
                return IterationBasis(rec.iteration, rec.time, policy, recorded,
                                      "beyond-record" if above or state == "beyond-record" else state,
                                      _above_note(above, expected, recorded))
            return IterationBasis(rec.iteration, rec.time, policy, recorded, "recorded")
        if above:
            return IterationBasis(rec.iteration, rec.time, policy, recorded, "beyond-record",
                                  _above_note(above, expected, recorded))
        return IterationBasis(rec.iteration, rec.time, policy, recorded, "recorded")


def _above_note(above: Sequence[str], policy: Mapping[str, float], recorded: Mapping[str, float | None]) -> str:
    return "; ".join(f"{v} at {policy.get(v, 0):.0f}% > recorded {recorded.get(v) or 0:.1f}%" for v in above)
