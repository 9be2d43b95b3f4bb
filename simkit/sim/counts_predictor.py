"""One predictor in the counts engine: the calls of a segment become counter increments directly.

Per segment, for ``n`` calls of one kind (``predict`` or ``feedback``) the predictor draws, in a
handful of vectorised numpy calls whatever ``n`` is:

1. the split over pods: round-robin, as the event engine's ``pod()`` (deterministic);
2. status codes per pod: ``multinomial(n_pod, error table)``;
3. per (pod, code), the refined latency cells: ``multinomial`` over :class:`CellModel` cells,
   which yields the client and the server bucket counts of the same calls;
4. ``_sum`` given the cells (conditional means, normal noise with the conditional variances);
5. for successful predictions, per-prediction feedback: ``Binomial(n_ok, probability)`` calls,
   each at a uniform time in the segment plus its own delay draw, queued for later segments.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from simkit.sim.deployment import Truth
from simkit.sim.distributions import make_draw, mean
from simkit.sim.executor_metrics import (
    CLIENT,
    FEEDBACK_TOTAL,
    REWARD_TOTAL,
    SERVER,
    PodIdentity,
    PodMetrics,
)
from simkit.sim.latency_model import CellModel, Queueing, cell_model, expected_wait_ratio
from simkit.sim.topology import grown_pods
from simkit.spec.scenario import Behaviour, Distribution
from simkit.spec.streams import child_rng
from simkit.tsdb.store import TSDB

# queueing below these limits changes latency by less than the engines' agreement can show
QUEUE_P_WAIT = 0.01
QUEUE_WAIT_RATIO = 0.005


class CountsPredictor:
    """A predictor whose calls arrive as counts per segment."""

    def __init__(
        self, key: str, behaviour: Behaviour, pods: list[PodIdentity], db: TSDB, seed: int, overhead: float
    ) -> None:
        self.key = key
        self.seed = seed
        self.overhead = overhead
        self._db = db
        self._identities = list(pods)
        self.pods = [PodMetrics(p, db) for p in pods]
        self._rr = 0
        self._revision = 0
        self.truth = Truth()
        self.arrived = 0
        self.queued = False  # True once the queueing model was used (an approximation)
        self.rng = child_rng(seed, key, "counts")
        self._pending: list[tuple[npt.NDArray[np.float64], float]] = []  # (sorted times, reward)
        self.set_behaviour(behaviour)

    def set_behaviour(self, b: Behaviour) -> None:
        self.behaviour = b
        self._revision += 1
        codes = b.errors.table()
        self._codes = [c for c, _ in codes] + ["200"]
        p = [r for _, r in codes]
        self._code_p = np.asarray(p + [max(0.0, 1.0 - sum(p))], dtype=np.float64)
        self._code_p /= self._code_p.sum()
        self.replicas = max(b.replicas if b.replicas is not None else len(self._identities), 0)
        self._models: dict[tuple[str, tuple[float, int, float] | None], CellModel] = {}
        self._means = {kind: mean(d) * b.latencyFactor for kind, d in self._dists().items()}
        fb = b.feedback
        self._delay = make_draw(fb.delay) if fb is not None else None
        self._draws = {"predict": make_draw(b.latency), "feedback": make_draw(b.feedbackLatency)}

    def _dists(self) -> dict[str, Distribution]:
        return {"predict": self.behaviour.latency, "feedback": self.behaviour.feedbackLatency}

    # --- the latency model in force --------------------------------------------------------------
    def _queue(self, rate: float) -> Queueing | None:
        """The queueing model at ``rate`` calls/s, or None where queueing is negligible."""
        b = self.behaviour
        servers = max(self.replicas, 1) * b.concurrency
        if b.loadFactor > 0:
            return Queueing(rate, servers, b.loadFactor)
        p_wait, ratio = expected_wait_ratio(servers, rate, self._means["predict"])
        if p_wait <= QUEUE_P_WAIT and ratio <= QUEUE_WAIT_RATIO:
            return None
        return Queueing(rate, servers, 0.0)

    def _model(self, kind: str, rate: float) -> CellModel:
        queue = self._queue(rate)
        qkey = queue.key() if queue is not None else None
        key = (kind, qkey)
        m = self._models.get(key)
        if m is None:
            b = self.behaviour
            dist = b.latency if kind == "predict" else b.feedbackLatency
            rng = child_rng(self.seed, self.key, "counts-model", self._revision, kind, str(qkey))
            m = self._models[key] = cell_model(
                dist, overhead=self.overhead, scale=b.latencyFactor, queue=queue, rng=rng
            )
            self.queued = self.queued or m.approximate
        return m

    # --- pods ----------------------------------------------------------------------------------
    def _split_pods(self, n: int) -> list[tuple[PodMetrics, int]]:
        """Round-robin over live replicas, starting where the last call left off."""
        r = max(self.replicas, 1)
        if len(self.pods) < r:
            self._identities = grown_pods(self._identities, r)
            self.pods.extend(PodMetrics(p, self._db) for p in self._identities[len(self.pods) :])
        base, extra = divmod(n, r)
        start = self._rr % r
        out = []
        for j in range(r):
            k = base + (1 if (j - start) % r < extra else 0)
            if k:
                out.append((self.pods[j], k))
        self._rr = (start + n) % r
        return out

    # --- calls ---------------------------------------------------------------------------------
    def record(self, kind: str, n: int, a: float, b: float, rate: float, reward: float | None = None) -> None:
        """``n`` calls of ``kind`` in ``[a, b)`` (``rate``: all calls/s this predictor serves now)."""
        if n <= 0:
            return
        self.arrived += n
        rng = self.rng
        model = self._model(kind, rate)
        split = self._split_pods(n)
        per_pod = rng.multinomial([k for _, k in split], self._code_p)  # (pods, codes)
        rows = [
            (pod, ci)
            for (pod, _), codes in zip(split, per_pod, strict=True)
            for ci, k in enumerate(codes)
            if k
        ]
        sizes = per_pod[per_pod > 0]
        cells = rng.multinomial(sizes, model.p)  # (rows, cells)
        client = cells @ model.client_matrix  # (rows, buckets)
        server = cells @ model.server_matrix
        sums = cells @ model.mean + np.sqrt(cells @ model.var) * rng.standard_normal(len(rows))
        sums = np.maximum(sums, cells @ model.low)
        truth = self.truth
        ok = 0
        for i, (pod, ci) in enumerate(rows):
            code = self._codes[ci]
            k = int(sizes[i])
            s = float(sums[i])
            _add(pod, CLIENT, kind, code, client[i], s, k)
            _add(pod, SERVER, kind, code, server[i], s + k * self.overhead, k)
            truth.add(kind, code, k, s)
            if kind == "predict" and code == "200":
                ok += k
        if kind == "feedback" and reward:
            # the Python wrapper counts feedback and reward only for a non-zero reward
            for pod, k in split:
                pod.counter(FEEDBACK_TOTAL).value += k
                pod.counter(REWARD_TOTAL).value += k * reward
            truth.reward += n * reward
        if kind == "predict" and ok:
            self._schedule_feedback(ok, a, b)

    def call(self, kind: str, reward: float | None, now: float) -> tuple[str, float]:
        """One call injected from outside (``simkit serve``'s HTTP requests): drawn and recorded on
        its own, exactly; returns (status code, latency)."""
        b = self.behaviour
        latency = float(self._draws[kind](self.rng, 1)[0]) * b.latencyFactor
        code = self._codes[int(self.rng.choice(len(self._code_p), p=self._code_p))]
        pod, _ = self._split_pods(1)[0]
        self.arrived += 1
        pod.cell(CLIENT, kind, code).observe(latency)
        pod.cell(SERVER, kind, code).observe(latency + self.overhead)
        self.truth.add(kind, code, 1, latency)
        if kind == "predict" and code == "200":
            self._schedule_feedback(1, now, now)
        elif kind == "feedback" and reward:
            pod.counter(FEEDBACK_TOTAL).value += 1
            pod.counter(REWARD_TOTAL).value += reward
            self.truth.reward += reward
        return code, latency

    def _schedule_feedback(self, ok: int, a: float, b: float) -> None:
        fb = self.behaviour.feedback
        if fb is None or self._delay is None or fb.probability <= 0:
            return
        k = int(self.rng.binomial(ok, fb.probability))
        if not k:
            return
        times = np.sort(a + (b - a) * self.rng.random(k) + self._delay(self.rng, k))
        # one sorted batch per segment: each is sorted once and searched once per later segment
        # (merging them into one queue re-sorted everything queued, which grew with the delay)
        self._pending.append((times, fb.reward))

    def due_feedback(self, until: float) -> list[tuple[int, float]]:
        """Per-prediction feedback calls arriving before ``until``: (count, reward) pairs, one per
        reward value in the order the rewards were first queued."""
        due: dict[float, int] = {}
        keep = []
        for times, reward in self._pending:
            i = int(np.searchsorted(times, until, side="left"))
            if i:
                due[reward] = due.get(reward, 0) + i
            if i < len(times):
                keep.append((times[i:], reward))
        self._pending = keep
        return [(n, reward) for reward, n in due.items()]

    def has_pending(self) -> bool:
        return bool(self._pending)

    def completed(self) -> int:
        return sum(self.truth.by_code.values())

    def in_flight(self) -> int:
        return 0  # calls complete within their segment

    def scrape(self, t: float) -> None:
        for p in self.pods:
            p.scrape(t)


def _add(
    pod: PodMetrics, family: str, kind: str, code: str, buckets: npt.NDArray[np.int64], s: float, n: int
) -> None:
    cell = pod.cell(family, kind, code)
    cell.counts = [x + y for x, y in zip(cell.counts, buckets.tolist(), strict=True)]
    cell.sum += s
    cell.count += n
