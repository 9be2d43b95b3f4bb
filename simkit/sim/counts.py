"""The counts engine: the same world as :class:`~simkit.sim.world.World`, drawn per segment.

A policy only sees what Prometheus stores: per scrape and series, cumulative bucket counts, sums
and counts. This engine draws those increments directly (perf-anchors.md §3.1), so its cost per
simulated second does not grow with traffic. Time advances in *segments* that end at every scrape,
event (and the end of its ``duration``), load start or end, and ``run_until`` target, so weights and
behaviour are constant inside a segment and change at their exact times. Per segment:

1. each load generator counts its arrivals (:mod:`.counts_load`);
2. routers split them over predictors with ``multinomial(n, weights)`` read from the object store
   (the same :func:`~simkit.sim.topology.routes` as the event engine; shadows get a copy of each);
3. each predictor turns its calls into counter increments (:mod:`.counts_predictor`), including
   per-prediction feedback that lands in later segments.

Series, labels, buckets, scrape times and the "a child series exists after its first observation"
rule are the event engine's own (:mod:`.executor_metrics`, :mod:`.topology`). What this engine
does not model is listed in the README ("Two engines"); :mod:`simkit.sim.engine` decides when it
is equivalent.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Callable

from simkit.sim.counts_load import EPS, CountedLoad
from simkit.sim.counts_predictor import CountsPredictor
from simkit.sim.executor_metrics import TYPES
from simkit.sim.objects import ObjectStore, load_objects
from simkit.sim.topology import (
    parse_epoch,
    predictor_key,
    predictor_setup,
    routes,
    scrape_times,
    world_begin,
)
from simkit.spec.bundle import Bundle
from simkit.spec.scenario import Behaviour, Event
from simkit.spec.streams import child_rng
from simkit.tsdb.store import TSDB

Target = tuple[str, str, str]  # (router kind or "direct", namespace/name or predictor key, call kind)


class CountsWorld:
    """Everything that happens in the cluster, as counts per segment; ``run_until`` is the seam."""

    engine = "counts"

    def __init__(self, bundle: Bundle, seed: int | None = None) -> None:
        self.bundle = bundle
        spec = bundle.scenario.spec
        self.seed = spec.seed if seed is None else seed
        self.epoch = parse_epoch(spec.start, bundle)
        self.begin = world_begin(bundle)
        self._now = self.begin
        self.tsdb = TSDB()
        self.tsdb.types.update(TYPES)
        self.store = ObjectStore(clock=lambda: self._now)
        load_objects(self.store, [d.raw for d in bundle.documents])
        self.overhead = spec.prometheus.executorOverhead
        self.predictors: dict[str, CountsPredictor] = {}
        self._services: dict[str, str] = {}
        for key in bundle.predictor_keys():
            self._make_predictor(key)
        self.loads: dict[str, CountedLoad] = {ld.name: CountedLoad(ld, bundle.base_dir) for ld in spec.load}
        self._targets = {ld.name: self._target(ld.to) for ld in spec.load}
        self._rewards = {ld.name: _reward(ld.payload) for ld in spec.load}
        self._router_rng = child_rng(self.seed, "counts-router")
        self._load_rng = {name: child_rng(self.seed, "load", name) for name in self.loads}
        self._routes: dict[
            tuple[str, str, str], tuple[int, list[tuple[float, CountsPredictor]], list[CountsPredictor]]
        ] = {}
        # the timeline: (time, order, action); events and their recoveries
        self._timeline: list[tuple[float, int, Callable[[], None]]] = []
        for i, ev in enumerate(spec.events):
            self._timeline.append((ev.at, i, self._event_action(ev)))
        self._timeline.sort(key=lambda x: (x[0], x[1]))
        self._scrapes = scrape_times(bundle, self.begin)
        self._next_scrape = next(self._scrapes)
        self.scrapes = 0
        self._started = False

    # --- construction -------------------------------------------------------------------------
    def _make_predictor(self, key: str, behaviour: Behaviour | None = None) -> CountsPredictor | None:
        setup = predictor_setup(self.bundle, self.store, key, behaviour)
        if setup is None:
            return None
        sim = CountsPredictor(key, setup.behaviour, setup.pods, self.tsdb, self.seed, self.overhead)
        self.predictors[key] = sim
        self._services[setup.service] = key
        return sim

    def lookup(self, key: str) -> CountsPredictor | None:
        real = predictor_key(self.bundle, self._services, key)
        sim = None if real is None else self.predictors.get(real)
        return sim if sim is not None or real is None else self._make_predictor(real)

    def _target(self, to: str) -> Target:
        kind, _, target = to.partition(":")
        call = "feedback" if kind == "feedback" else "predict"
        parts = target.split("/")
        if kind in ("predictor", "feedback") and len(parts) == 3:
            return ("direct", target, call)
        router = "VirtualService" if kind == "virtualservice" else "SeldonDeployment"
        return (router, f"{parts[0]}/{parts[1]}", call)

    def _event_action(self, ev: Event) -> Callable[[], None]:
        def apply() -> None:
            if ev.predictor is not None:
                sim = self.predictors[ev.predictor]
                before = sim.behaviour
                sim.set_behaviour(
                    Behaviour.model_validate({**before.model_dump(exclude_none=True), **ev.set})
                )
                if ev.duration is not None:
                    self._schedule(self._now + ev.duration, lambda: sim.set_behaviour(before))
            else:
                gen = self.loads[str(ev.load)]
                old = {k: getattr(gen.spec, k) for k in ev.set}
                gen.update(dict(ev.set))
                if ev.duration is not None:
                    self._schedule(self._now + ev.duration, lambda: gen.update(old))

        return apply

    def _schedule(self, t: float, action: Callable[[], None]) -> None:
        order = len(self._timeline) + 10_000
        bisect.insort(self._timeline, (t, order, action), key=lambda x: (x[0], x[1]))

    # --- routing -------------------------------------------------------------------------------
    def _route(
        self, kind: str, ref: str
    ) -> tuple[list[tuple[float, CountsPredictor]], list[CountsPredictor]]:
        ns, _, name = ref.partition("/")
        cached = self._routes.get((kind, ns, name))
        if cached is not None and cached[0] == self.store.generation:
            return cached[1], cached[2]
        weighted, shadows = routes(self.store.get(kind, ns, name), kind, ns, name, self.lookup)
        self._routes[(kind, ns, name)] = (self.store.generation, weighted, shadows)
        return weighted, shadows

    # --- one segment ---------------------------------------------------------------------------
    def _segment(self, a: float, b: float) -> None:
        calls: dict[tuple[CountsPredictor, str, float | None], int] = defaultdict(int)
        for name, gen in self.loads.items():
            n = gen.arrivals(a, b, self._load_rng[name])
            if not n:
                continue
            kind, ref, call = self._targets[name]
            reward = self._rewards[name] if call == "feedback" else None
            if kind == "direct":
                sim = self.lookup(ref)
                if sim is not None:
                    calls[(sim, call, reward)] += n
                continue
            weighted, shadows = self._route(kind, ref)
            if weighted:
                total = sum(w for w, _ in weighted)
                shares = self._router_rng.multinomial(n, [w / total for w, _ in weighted])
                for (_, sim), k in zip(weighted, shares, strict=True):
                    if k:
                        calls[(sim, call, reward)] += int(k)
            for sim in shadows:
                calls[(sim, call, reward)] += n
        busy: dict[CountsPredictor, int] = defaultdict(int)
        for (sim, _, _), n in calls.items():
            busy[sim] += n
        span = max(b - a, 1e-9)
        for (sim, call, _reward), n in sorted(
            calls.items(), key=lambda kv: (kv[0][0].key, kv[0][1], kv[0][2] or 0.0)
        ):
            if call == "predict":
                sim.record("predict", n, a, b, busy[sim] / span)
        for (sim, call, reward), n in sorted(
            calls.items(), key=lambda kv: (kv[0][0].key, kv[0][1], kv[0][2] or 0.0)
        ):
            if call == "feedback":
                sim.record("feedback", n, a, b, busy[sim] / span, reward)
        for key in sorted(self.predictors):
            sim = self.predictors[key]
            if sim.has_pending():
                for n, reward in sim.due_feedback(b - EPS):
                    sim.record("feedback", n, a, b, busy[sim] / span, reward)

    def _boundaries_after(self, t: float) -> float:
        nxt = self._next_scrape
        if self._timeline:
            nxt = min(nxt, self._timeline[0][0])
        for gen in self.loads.values():
            for x in gen.boundaries():
                if x > t:
                    nxt = min(nxt, x)
        return nxt

    # --- driving ------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        return self._now

    def unix(self, t: float | None = None) -> float:
        return self.epoch + (self._now if t is None else t)

    def run_until(self, t: float) -> None:
        """Advance to sim time ``t``; events and scrapes at exactly ``t`` happen."""
        while True:
            # instants due now: events first (as SimPy runs them in schedule order), then a scrape
            while self._timeline and self._timeline[0][0] <= self._now:
                self._timeline.pop(0)[2]()
            if self._next_scrape <= self._now:
                self.scrape()
                self._next_scrape = next(self._scrapes)
                continue
            if self._now >= t:
                return
            end = min(t, self._boundaries_after(self._now))
            self._segment(self._now, end)
            self._now = end

    def stop_scraping(self) -> None:
        """No more scrapes (the bench scores what follows a decision from the ground truth): the
        segments then run from event to event, whatever the scrape interval."""
        self._next_scrape = math.inf

    def scrape(self) -> None:
        t = self.epoch + self._now
        for sim in self.predictors.values():
            sim.scrape(t)
        self.tsdb.note_time(t)
        self.scrapes += 1

    def start_call(
        self, sim: CountsPredictor, kind: str, reward: float | None, done: Callable[[str, float], None]
    ) -> None:
        """Inject one call from outside the simulation (``simkit serve``'s HTTP requests);
        ``done(code, sim_time)`` runs when the simulated executor answers."""
        code, latency = sim.call(kind, reward, self._now)
        self._schedule(self._now + latency, lambda: done(code, self._now))

    def notes(self) -> list[str]:
        """What this run approximated (shown with the engine's name)."""
        queued = sorted(k for k, p in self.predictors.items() if p.queued)
        return [f"queueing approximated (M/G/c) on {', '.join(queued)}"] if queued else []


def _reward(payload: dict[str, object]) -> float | None:
    value = payload.get("reward")
    return float(value) if isinstance(value, int | float) and not math.isnan(float(value)) else None
