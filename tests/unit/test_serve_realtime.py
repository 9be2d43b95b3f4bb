"""The real-time driver and the in-process data plane of ``simkit serve`` (no sockets).

Time is a fake monotonic clock the test moves by hand, so nothing depends on the machine's speed:
the driver thread only ever advances the world to what the fake clock says.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from simkit.serve.dataplane import DataPlane
from simkit.serve.realtime import RealtimeWorld
from simkit.sim.engine import AnyWorld
from simkit.sim.engine import make_world as build_world
from simkit.spec.bundle import load_scenario

SDEP = {
    "apiVersion": "machinelearning.seldon.io/v1",
    "kind": "SeldonDeployment",
    "metadata": {"name": "m", "namespace": "p"},
    "spec": {
        "predictors": [
            {
                "name": "a",
                "traffic": 100,
                "graph": {"name": "clf", "implementation": "SKLEARN_SERVER", "modelUri": "x"},
            },
            {
                "name": "b",
                "traffic": 0,
                "graph": {"name": "clf", "implementation": "XGBOOST_SERVER", "modelUri": "y"},
            },
        ]
    },
}
FLAKY = {
    "errors": {"codes": {"500": 0.3, "503": 0.2}},
    "latency": {"distribution": "constant", "value": 0.01},
}
ROW = {"data": {"ndarray": [[6.8, 2.8, 4.8, 1.4]]}}


def make_world(tmp: Path, engine: str = "events") -> AnyWorld:
    spec = {"predictors": {"p/m/a": FLAKY, "p/m/b": {"latency": {"distribution": "constant", "value": 0.02}}}}
    docs = [
        {"apiVersion": "simkit/v1alpha1", "kind": "Scenario", "metadata": {"name": "t"}, "spec": spec},
        SDEP,
    ]
    path = tmp / "s.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return build_world(load_scenario(path), None, engine)[0]


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.t

    def advance(self, dt: float) -> None:
        with self.lock:
            self.t += dt


@pytest.fixture(params=["events", "counts"])
def running(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[RealtimeWorld, FakeClock]]:
    clock = FakeClock()
    rt = RealtimeWorld(
        make_world(tmp_path, request.param), speed=2.0, step=0.002, clock=clock, wall=lambda: 1_700_000_000.0
    )
    rt.start()
    try:
        yield rt, clock
    finally:
        rt.stop()


@pytest.mark.parametrize("engine", ["events", "counts"])
def test_start_call_reports_the_code_serve_recorded(tmp_path: Path, engine: str) -> None:
    world = make_world(tmp_path, engine)
    sim = world.predictors["p/m/a"]
    codes: list[str] = []
    for _ in range(200):  # all queue at once
        world.start_call(sim, "predict", None, lambda code, t: codes.append(code))  # type: ignore[arg-type]
    world.run_until(world.now + 60)
    returned = Counter(codes)
    assert returned == Counter(sim.truth.by_code)
    assert set(returned) == {"200", "500", "503"}


def test_world_follows_the_clock_times_speed(running: tuple[RealtimeWorld, FakeClock]) -> None:
    rt, clock = running
    assert rt.world.now == 0.0 and rt.t0_sim == 0.0
    clock.advance(1.5)
    deadline = time.monotonic() + 10
    while rt.world.now < 3.0 and time.monotonic() < deadline:
        time.sleep(0.005)
    with rt.lock:
        assert rt.world.now == pytest.approx(3.0)  # 1.5 s of wall clock at speed 2
    assert rt.unix_of(3.0) == pytest.approx(1_700_000_000.0 + 1.5)


def test_a_call_completes_when_sim_time_reaches_it(running: tuple[RealtimeWorld, FakeClock]) -> None:
    rt, clock = running
    sim = rt.world.predictors["p/m/b"]
    fut = rt.submit(lambda w: rt.start_call(sim, "predict")).result(timeout=10)
    time.sleep(0.05)
    assert not fut.done()  # the clock has not moved: the simulated 20 ms have not passed
    clock.advance(0.02)  # 40 ms of sim time at speed 2
    done = fut.result(timeout=10)
    assert done.code == "200" and done.predictor == "p/m/b"
    assert done.finished - done.arrived == pytest.approx(0.02)
    assert sim.truth.predictions == 1


def test_stop_cancels_waiting_calls(tmp_path: Path) -> None:
    clock = FakeClock()
    rt = RealtimeWorld(make_world(tmp_path), clock=clock).start()
    sim = rt.world.predictors["p/m/b"]
    fut = rt.submit(lambda w: rt.start_call(sim, "predict")).result(timeout=10)
    rt.stop()
    assert fut.cancelled()
    assert rt.submit(lambda w: 1).cancelled()


def test_dataplane_routes_by_weights_and_records(running: tuple[RealtimeWorld, FakeClock]) -> None:
    rt, clock = running
    plane = DataPlane(rt, seed=7, timeout=10)
    stop = threading.Event()

    def tick() -> None:  # keep sim time moving while the requests wait for their answers
        while not stop.is_set():
            clock.advance(0.01)
            time.sleep(0.002)

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        body = json.dumps(ROW).encode()
        codes: Counter[int] = Counter()
        for _ in range(30):
            r = plane.handle("POST", "/seldon/p/m/api/v1.0/predictions", {}, body)
            assert r is not None
            codes[r.status] += 1
            if r.status == 200:
                assert json.loads(r.body)["data"]["names"] == [
                    "t:0",
                    "t:1",
                    "t:2",
                ]  # all traffic on sklearn "a"
            else:
                assert json.loads(r.body)["status"]["reason"] == "MICROSERVICE_INTERNAL_ERROR"
        a = rt.world.predictors["p/m/a"].truth
        assert a.predictions == 30 and codes == Counter({int(c): n for c, n in a.by_code.items()})
        r = plane.handle("POST", "/direct/p/m/b/api/v1.0/feedback", {"seldon-puid": "abc"}, b'{"reward": 2}')
        assert r is not None and r.status == 200 and ("Seldon-Puid", "abc") in r.headers
        assert rt.world.predictors["p/m/b"].truth.reward == 2.0
        r = plane.handle("POST", "/seldon/p/nope/api/v1.0/predictions", {}, body)
        assert r is not None and r.status == 404
        r = plane.handle("POST", "/seldon/p/m/api/v1.0/predictions", {}, b"not json")
        assert r is not None and r.status == 400 and a.predictions == 30  # rejected before the model
        assert plane.handle("GET", "/nothing", {}, b"") is None
    finally:
        stop.set()
        ticker.join()


def test_puids_are_deterministic_in_seed_and_counter(running: tuple[RealtimeWorld, FakeClock]) -> None:
    rt, _ = running
    one, two, other = DataPlane(rt, seed=1), DataPlane(rt, seed=1), DataPlane(rt, seed=2)
    first = [one.next_puid() for _ in range(3)]
    assert first == [two.next_puid() for _ in range(3)]
    assert len(set(first)) == 3 and other.next_puid() != first[0]
    assert all(len(p) == 36 and p[14] == "4" for p in first)
