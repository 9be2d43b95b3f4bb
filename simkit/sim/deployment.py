"""Simulated predictors and the routers in front of them.

A predictor is ``replicas x concurrency`` model workers (one :class:`WorkerPool`: requests queue when
all are busy). A request's client latency, as the executor measures its call to the model, is the
queueing time plus the model's service time; the server latency adds the executor's overhead.
Errors are drawn per request from the predictor's error table. Per-prediction feedback (user
engagement that follows traffic) is scheduled after a successful prediction with a probability and
a delay. Routers read the live traffic split from the object store on every request, caching it
until the store's generation changes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
import simpy

from simkit.sim.distributions import Sampler, make_draw, uniform_sampler
from simkit.sim.executor_metrics import CLIENT, FEEDBACK_TOTAL, REWARD_TOTAL, SERVER, PodIdentity, PodMetrics
from simkit.sim.objects import ObjectStore
from simkit.sim.topology import routes
from simkit.spec.scenario import Behaviour
from simkit.spec.streams import child_rng
from simkit.tsdb.store import TSDB


class WorkerPool:
    """FIFO model workers whose number can change mid-run, on SimPy's public event API only.

    ``simpy.Resource`` fixes its capacity at construction; changing it meant writing its private
    ``_capacity`` and calling ``_trigger_put``, which a SimPy release may break silently. This pool
    schedules exactly what ``Resource`` schedules (a request is granted at once if the head of the
    queue fits; a release frees the slot now and admits the head when its own event is
    processed), so results do not change, with one deliberate fix: raising the capacity admits
    every queued request that now fits, where the old call woke only the first.
    """

    def __init__(self, env: simpy.Environment, capacity: int) -> None:
        self.env = env
        self.capacity = capacity
        self.count = 0  # requests being served
        self.queue: deque[simpy.Event] = deque()

    def request(self) -> simpy.Event:
        event = self.env.event()
        self.queue.append(event)
        self._admit_head()
        return event

    def release(self) -> None:
        self.count -= 1
        hop = self.env.event()  # as simpy's Release event: the next request is granted when it is processed
        hop.callbacks.append(lambda _: self._admit_head())
        hop.succeed()

    def resize(self, capacity: int) -> None:
        self.capacity = capacity
        while self.queue and self.count < self.capacity:
            self._admit_head()

    def _admit_head(self) -> None:
        if self.queue and self.count < self.capacity:
            self.count += 1
            self.queue.popleft().succeed()


@dataclass
class Truth:
    """Ground-truth counters of one predictor, straight from the simulation (not from PromQL)."""

    predictions: int = 0
    errors: int = 0
    feedback: int = 0
    reward: float = 0.0
    latency_sum: float = 0.0  # client seconds over predictions
    feedback_latency_sum: float = 0.0  # client seconds over feedback calls
    by_code: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, code: str, n: int, latency_sum: float) -> None:
        """``n`` calls of ``kind`` answered ``code``, with their total client latency."""
        self.by_code[code] = self.by_code.get(code, 0) + n
        if kind == "predict":
            self.predictions += n
            self.latency_sum += latency_sum
            if code != "200":
                self.errors += n
        else:
            self.feedback += n
            self.feedback_latency_sum += latency_sum


class PredictorSim:
    """One predictor of a SeldonDeployment: capacity, latency, errors, feedback, metrics."""

    def __init__(
        self,
        env: simpy.Environment,
        key: str,
        behaviour: Behaviour,
        pods: list[PodIdentity],
        db: TSDB,
        seed: int,
        overhead: float,
    ) -> None:
        self.env = env
        self.key = key
        self.seed = seed
        self.overhead = overhead
        self.pods = [PodMetrics(p, db) for p in pods]
        self._all_pods = pods
        self._db = db
        self._rr = 0
        self._revision = 0
        self.truth = Truth()
        self.arrived = 0  # calls that reached this predictor (for conservation checks)
        self.uniform = uniform_sampler(child_rng(seed, key, "uniform"))
        self.resource = WorkerPool(env, capacity=1)
        self.set_behaviour(behaviour)

    def set_behaviour(self, b: Behaviour) -> None:
        """Swap in new behaviour (an event, or a recovery): fresh samplers, new capacity."""
        self.behaviour = b
        self._revision += 1
        rev = self._revision
        self.latency = Sampler(make_draw(b.latency), child_rng(self.seed, self.key, "latency", rev))
        self.feedback_latency = Sampler(
            make_draw(b.feedbackLatency), child_rng(self.seed, self.key, "fb-latency", rev)
        )
        self.feedback_delay = (
            Sampler(make_draw(b.feedback.delay), child_rng(self.seed, self.key, "fb-delay", rev))
            if b.feedback
            else None
        )
        cum, table = 0.0, []
        for code, rate in b.errors.table():
            cum += rate
            table.append((cum, code))
        self.error_table = table
        self.factor = b.latencyFactor
        replicas = b.replicas if b.replicas is not None else len(self._all_pods)
        self.replicas = max(replicas, 0)
        capacity = max(self.replicas, 1) * b.concurrency
        if capacity != self.resource.capacity:
            self.resource.resize(capacity)

    def pod(self) -> PodMetrics:
        """Round-robin over live replicas, as a Kubernetes Service spreads connections."""
        n = max(self.replicas, 1)
        while len(self.pods) < n:
            base = self._all_pods[0]
            ident = PodIdentity(**{**base.__dict__, "replica": len(self.pods)})
            self._all_pods.append(ident)
            self.pods.append(PodMetrics(ident, self._db))
        i = self._rr % n
        self._rr = i + 1
        return self.pods[i]

    def _code(self) -> str:
        table = self.error_table
        if not table:
            return "200"
        u = self.uniform.next()
        for cum, code in table:
            if u < cum:
                return code
        return "200"

    def serve(self, kind: str, reward: float | None = None) -> Generator[simpy.Event, Any, str]:
        """One call (``predict`` or ``feedback``) through the model workers, recorded on finish;
        the process's value is the status code answered."""
        env = self.env
        arrival = env.now
        self.arrived += 1
        res = self.resource
        yield res.request()
        sample = (self.latency if kind == "predict" else self.feedback_latency).next() * self.factor
        lf = self.behaviour.loadFactor
        if lf:
            sample *= 1.0 + lf * (res.count / res.capacity)
        yield env.timeout(sample)
        res.release()
        client = env.now - arrival
        code = self._code()
        pod = self.pod()
        pod.cell(CLIENT, kind, code).observe(client)
        pod.cell(SERVER, kind, code).observe(client + self.overhead)
        truth = self.truth
        truth.add(kind, code, 1, client)
        fb = self.behaviour.feedback
        if kind == "predict":
            if code == "200" and fb is not None and self.uniform.next() < fb.probability:
                assert self.feedback_delay is not None
                env.process(self._later_feedback(self.feedback_delay.next(), fb.reward))
        elif reward:
            # the Python wrapper skips both counters when the reward is 0 or missing
            truth.reward += reward
            pod.counter(FEEDBACK_TOTAL).value += 1
            pod.counter(REWARD_TOTAL).value += reward
        return code

    def _later_feedback(self, delay: float, reward: float) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(delay)
        yield self.env.process(self.serve("feedback", reward))

    def in_flight(self) -> int:
        """Calls queued or being served right now."""
        return len(self.resource.queue) + self.resource.count

    def completed(self) -> int:
        return sum(self.truth.by_code.values())

    def scrape(self, t: float) -> None:
        for p in self.pods:
            p.scrape(t)


P = TypeVar("P")  # what a router routes to: a PredictorSim, or the counts engine's predictor


class Router(Generic[P]):
    """Splits calls by integer weights read from an object in the store (cached per generation)."""

    def __init__(
        self,
        store: ObjectStore,
        rng: np.random.Generator,
        lookup: Callable[[str], P | None],
        kind: str,
        namespace: str,
        name: str,
    ) -> None:
        self.store = store
        self.uniform = uniform_sampler(rng)
        self.lookup = lookup
        self.kind, self.namespace, self.name = kind, namespace, name
        self._generation = -1
        self._table: list[tuple[float, P]] = []
        self._shadows: list[P] = []
        self.total = 0.0

    def _refresh(self) -> None:
        obj = self.store.get(self.kind, self.namespace, self.name)
        weighted, shadows = routes(obj, self.kind, self.namespace, self.name, self.lookup)
        cum, table = 0.0, []
        for w, sim in weighted:
            cum += w
            table.append((cum, sim))
        self._table, self._shadows, self.total = table, shadows, cum
        self._generation = self.store.generation

    def pick(self) -> tuple[P | None, list[P]]:
        """The predictor for the next call (None if nothing has weight), and the shadows."""
        if self._generation != self.store.generation:
            self._refresh()
        table = self._table
        if not table:
            return None, self._shadows
        if len(table) == 1:
            return table[0][1], self._shadows
        u = self.uniform.next() * self.total
        for cum, sim in table:
            if u < cum:
                return sim, self._shadows
        return table[-1][1], self._shadows
