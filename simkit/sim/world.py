"""The simulated world of one scenario: predictors, routers, load, events, and a scraper.

``World(bundle, seed)`` builds everything; ``run_until(t)`` advances SimPy time (seconds since
``spec.start``; negative before it). The scraper snapshots every series each ``scrapeInterval``
into ``world.tsdb`` at Unix time ``epoch + t``, so PromQL over the TSDB sees exactly what a
Prometheus scraping the executors would have stored by then. The manifests live in
``world.store``; routers read traffic weights from there on every request.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import simpy

from simkit.sim.deployment import PredictorSim, Router
from simkit.sim.executor_metrics import TYPES
from simkit.sim.load import LoadGenerator
from simkit.sim.objects import ObjectStore, load_objects
from simkit.sim.topology import parse_epoch, predictor_key, predictor_setup, scrape_times, world_begin
from simkit.spec.bundle import Bundle, load_scenario
from simkit.spec.scenario import Behaviour, Event, Load
from simkit.spec.streams import child_rng
from simkit.tsdb.store import TSDB

if TYPE_CHECKING:
    from simkit.sim.counts import CountsWorld

__all__ = ["World", "parse_epoch", "simulate"]


class World:
    """Everything that happens in the cluster, simulated; time is the one seam (``run_until``)."""

    def __init__(self, bundle: Bundle, seed: int | None = None) -> None:
        self.bundle = bundle
        spec = bundle.scenario.spec
        self.seed = spec.seed if seed is None else seed
        self.epoch = parse_epoch(spec.start, bundle)
        self.engine = "events"
        self.begin = world_begin(bundle)
        self.env = simpy.Environment(initial_time=self.begin)
        self.tsdb = TSDB()
        self.tsdb.types.update(TYPES)
        self.store = ObjectStore(clock=lambda: self.env.now)
        load_objects(self.store, [d.raw for d in bundle.documents])
        self.overhead = spec.prometheus.executorOverhead
        self.predictors: dict[str, PredictorSim] = {}
        self._services: dict[str, str] = {}
        for key in bundle.predictor_keys():
            self._make_predictor(key)
        self.routers: dict[str, Router[PredictorSim]] = {}
        self.loads: dict[str, LoadGenerator] = {}
        for ld in spec.load:
            self._start_load(ld)
        for i, ev in enumerate(spec.events):
            self.env.process(self._event(i, ev))
        self.scrapes = 0
        self.scraping = True
        self.env.process(self._scraper())

    # --- construction -------------------------------------------------------------------------
    def _make_predictor(self, key: str, behaviour: Behaviour | None = None) -> PredictorSim | None:
        setup = predictor_setup(self.bundle, self.store, key, behaviour)
        if setup is None:
            return None
        sim = PredictorSim(self.env, key, setup.behaviour, setup.pods, self.tsdb, self.seed, self.overhead)
        self.predictors[key] = sim
        self._services[setup.service] = key
        return sim

    def lookup(self, key: str) -> PredictorSim | None:
        """A predictor by ``ns/sdep/predictor``, or by ``@service:ns/svc``; created on first use
        when a manifest applied mid-run (a promotion) introduced it."""
        real = predictor_key(self.bundle, self._services, key)
        sim = None if real is None else self.predictors.get(real)
        return sim if sim is not None or real is None else self._make_predictor(real)

    def _router(self, kind: str, ns: str, name: str) -> Router[PredictorSim]:
        rkey = f"{kind}:{ns}/{name}"
        r = self.routers.get(rkey)
        if r is None:
            r = self.routers[rkey] = Router(
                self.store, child_rng(self.seed, "router", rkey), self.lookup, kind, ns, name
            )
        return r

    def _start_load(self, ld: Load) -> None:
        kind, _, target = ld.to.partition(":")
        parts = target.split("/")
        call = "feedback" if kind == "feedback" else "predict"
        reward_value = ld.payload.get("reward")
        reward = float(reward_value) if isinstance(reward_value, int | float) else None
        env = self.env
        if kind in ("predictor", "feedback") and len(parts) == 3:
            fixed = self.lookup(target)
            assert fixed is not None

            def fire() -> None:
                env.process(fixed.serve(call, reward))
        else:
            router = self._router(
                "VirtualService" if kind == "virtualservice" else "SeldonDeployment", parts[0], parts[1]
            )

            def fire() -> None:
                sim, shadows = router.pick()
                if sim is not None:
                    env.process(sim.serve(call, reward))
                for shadow in shadows:
                    env.process(shadow.serve(call, reward))

        gen = LoadGenerator(env, ld, fire, child_rng(self.seed, "load", ld.name), self.bundle.base_dir)
        self.loads[ld.name] = gen
        env.process(gen.process())

    def start_call(
        self, sim: PredictorSim, kind: str, reward: float | None, done: Callable[[str, float], None]
    ) -> None:
        """Inject one call from outside the simulation (``simkit serve``'s HTTP requests);
        ``done(code, sim_time)`` runs when the simulated executor answers."""
        proc = self.env.process(sim.serve(kind, reward))
        proc.callbacks.append(lambda event: done(str(event.value), float(self.env.now)))

    # --- processes ----------------------------------------------------------------------------
    def _event(self, index: int, ev: Event) -> Generator[simpy.Event, Any, None]:
        if ev.at > self.env.now:
            yield self.env.timeout(ev.at - self.env.now)
        if ev.predictor is not None:
            sim = self.predictors[ev.predictor]
            before = sim.behaviour
            after = Behaviour.model_validate({**before.model_dump(exclude_none=True), **ev.set})
            sim.set_behaviour(after)
            if ev.duration is not None:
                yield self.env.timeout(ev.duration)
                sim.set_behaviour(before)
        else:
            gen = self.loads[str(ev.load)]
            old = {k: getattr(gen.spec, k) for k in ev.set}
            gen.update(dict(ev.set))
            if ev.duration is not None:
                yield self.env.timeout(ev.duration)
                gen.update(old)

    def _scraper(self) -> Generator[simpy.Event, Any, None]:
        env = self.env
        for t in scrape_times(self.bundle, self.begin):
            if t > env.now:
                yield env.timeout(t - env.now)
            if self.scraping:
                self.scrape()

    def stop_scraping(self) -> None:
        """No more scrapes: what follows is scored from the ground truth only (the bench after a
        decision), so the TSDB stops where the policy last looked."""
        self.scraping = False

    def scrape(self) -> None:
        t = self.epoch + self.env.now
        for sim in self.predictors.values():
            sim.scrape(t)
        self.tsdb.note_time(t)
        self.scrapes += 1

    # --- driving ------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        return float(self.env.now)

    def unix(self, t: float | None = None) -> float:
        return self.epoch + (self.env.now if t is None else t)

    def run_until(self, t: float) -> None:
        """Advance to sim time ``t`` (events at exactly ``t``, scrapes included, are processed)."""
        if t > self.env.now:
            self.env.run(until=t)
        # SimPy's run(until) stops before events scheduled at `until`; process those too
        while self.env.peek() <= t:
            self.env.step()


def simulate(
    scenario: str, duration: float, seed: int | None = None, engine: str | None = None
) -> World | CountsWorld:
    """Run a scenario's world for ``duration`` seconds from its first load start, with the engine
    ``engine`` chooses (``events``, ``counts``, ``auto``; default the scenario's ``spec.engine``)."""
    from simkit.sim.engine import make_world  # engine builds either world, so it imports this module

    world, _ = make_world(load_scenario(scenario), seed, engine)
    world.run_until(world.begin + duration)
    return world
