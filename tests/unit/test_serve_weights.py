"""Following a Kubernetes API (the in-process fake on 127.0.0.1): VirtualService weights, objects
missing from the API, and an unreachable API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from simkit.live.kubefake import KubeFake
from simkit.serve.realtime import RealtimeWorld
from simkit.serve.weights import KubeFollower, followed_objects
from simkit.sim.world import World
from simkit.spec.bundle import load_scenario
from simkit.spec.documents import load_yaml_documents

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "iris-separate-sdeps"
CANDIDATE_HOST = "iris-default.ns-candidate.svc.cluster.local"


def vs_weights(rt: RealtimeWorld) -> list[object]:
    with rt.lock:
        obj = rt.world.store.get("VirtualService", "default", "routing-rule") or {}
    return [r.get("weight") for r in obj["spec"]["http"][0]["route"]]


@pytest.fixture
def rt() -> Iterator[RealtimeWorld]:
    r = RealtimeWorld(World(load_scenario(SCENARIO)), clock=lambda: 0.0).start()
    try:
        yield r
    finally:
        r.stop()


def test_followed_objects_try_the_manifest_version_first() -> None:
    objs = {o.label: o for o in followed_objects(load_scenario(SCENARIO))}
    assert set(objs) == {
        "SeldonDeployment ns-baseline/iris",
        "SeldonDeployment ns-candidate/iris",
        "VirtualService default/routing-rule",
    }
    vs = objs["VirtualService default/routing-rule"].paths
    assert vs[0] == "/apis/networking.istio.io/v1alpha3/namespaces/default/virtualservices/routing-rule"
    assert "/apis/networking.istio.io/v1beta1/namespaces/default/virtualservices/routing-rule" in vs


def test_virtualservice_weights_follow_and_missing_objects_are_logged_once(rt: RealtimeWorld) -> None:
    logs: list[str] = []
    docs = [
        d.raw for name in ("routing-rule.yaml", "baseline.yaml") for d in load_yaml_documents(SCENARIO / name)
    ]
    with KubeFake() as fake:
        fake.cluster.load(docs)  # the candidate SeldonDeployment is not in the API
        follower = KubeFollower(rt, fake.url, followed_objects(rt.world.bundle), log=logs.append)
        try:
            follower.poll_once()
            follower.poll_once()
            assert vs_weights(rt) == [100, 0]
            assert sum("not found" in line for line in logs) == 1
            assert follower.state["SeldonDeployment ns-candidate/iris"] == "missing"
            assert (
                rt.world.store.get("SeldonDeployment", "ns-candidate", "iris") is not None
            )  # scenario copy kept
            applied = follower.applied
            fake.cluster.mutate(
                "VirtualService",
                "default",
                "routing-rule",
                json_patch=[
                    {"op": "replace", "path": "/spec/http/0/route/0/weight", "value": 40},
                    {"op": "replace", "path": "/spec/http/0/route/1/weight", "value": 60},
                ],
            )
            follower.poll_once()
            assert vs_weights(rt) == [40, 60]
            assert follower.applied == applied + 1  # only the changed object was re-applied
            follower.poll_once()
            assert follower.applied == applied + 1
        finally:
            follower.stop()


def test_unreachable_api_keeps_weights_and_logs_once(rt: RealtimeWorld) -> None:
    logs: list[str] = []
    fake = KubeFake()
    url = fake.url
    fake.stop()  # nothing listens there any more
    follower = KubeFollower(rt, url, followed_objects(rt.world.bundle), log=logs.append, timeout=0.5)
    try:
        follower.poll_once()
        follower.poll_once()
    finally:
        follower.stop()
    assert vs_weights(rt) == [100, 0]
    assert len(logs) == 1 and "unreachable" in logs[0]
    assert set(follower.state.values()) == {"unreachable"}
