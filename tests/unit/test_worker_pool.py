"""WorkerPool (sim/deployment.py) against simpy.Resource: the same grant times for the same
arrivals at a fixed capacity, and a capacity raise that admits every queued request that fits."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from simkit.sim.deployment import WorkerPool


def _grants(
    pool_kind: str, capacity: int, calls: list[tuple[float, float]]
) -> list[tuple[int, float, float]]:
    env = simpy.Environment()
    pool: Any = simpy.Resource(env, capacity=capacity) if pool_kind == "simpy" else WorkerPool(env, capacity)
    log: list[tuple[int, float, float]] = []

    def call(i: int, arrival: float, service: float) -> Generator[simpy.Event, Any, None]:
        yield env.timeout(arrival)
        req = pool.request()
        yield req
        log.append((i, env.now, pool.count))
        yield env.timeout(service)
        if pool_kind == "simpy":
            pool.release(req)
        else:
            pool.release()

    for i, (arrival, service) in enumerate(calls):
        env.process(call(i, arrival, service))
    env.run()
    return log


CALLS = st.lists(
    st.tuples(st.integers(0, 20).map(float), st.integers(0, 5).map(float)), min_size=1, max_size=40
)


@settings(max_examples=200, deadline=None)
@given(capacity=st.integers(1, 4), calls=CALLS)
def test_same_schedule_as_simpy_resource(capacity: int, calls: list[tuple[float, float]]) -> None:
    # integer times make ties (arrivals at the instant of a release) common: the order must match too
    assert _grants("pool", capacity, calls) == _grants("simpy", capacity, calls)


def test_raising_capacity_admits_every_queued_request_that_fits() -> None:
    env = simpy.Environment()
    pool = WorkerPool(env, 1)
    granted: list[float] = []

    def call() -> Generator[simpy.Event, Any, None]:
        yield pool.request()
        granted.append(env.now)
        yield env.timeout(100)
        pool.release()

    for _ in range(4):
        env.process(call())

    def scale_up() -> Generator[simpy.Event, Any, None]:
        yield env.timeout(5)
        pool.resize(3)

    env.process(scale_up())
    env.run(until=50)
    assert granted == [0, 5, 5] and len(pool.queue) == 1 and pool.count == 3
