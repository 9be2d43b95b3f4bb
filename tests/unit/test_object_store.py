"""RFC 6902 JSON patches on the sim's object store, with Seldon's admission rules."""

from __future__ import annotations

import pytest

from simkit.sim.objects import ObjectStore, PatchError
from simkit.spec.pointers import apply_json_patch as apply_patch

SDEP = {
    "apiVersion": "machinelearning.seldon.io/v1",
    "kind": "SeldonDeployment",
    "metadata": {"name": "iris", "namespace": "ns-production"},
    "spec": {
        "predictors": [
            {"name": "baseline", "traffic": 100, "graph": {"name": "c"}},
            {"name": "candidate", "traffic": 0, "graph": {"name": "c"}},
        ]
    },
}


def test_rfc6902_operations() -> None:
    doc = {"a": {"b": [1, 2, 3]}, "c": "x"}
    out = apply_patch(
        doc,
        [
            {"op": "add", "path": "/a/b/1", "value": 9},
            {"op": "remove", "path": "/a/b/0"},
            {"op": "replace", "path": "/c", "value": "y"},
            {"op": "add", "path": "/a/b/-", "value": 4},
            {"op": "copy", "from": "/c", "path": "/d"},
            {"op": "move", "from": "/d", "path": "/e~1f"},
            {"op": "test", "path": "/e~1f", "value": "y"},
        ],
    )
    assert out == {"a": {"b": [9, 2, 3, 4]}, "c": "y", "e/f": "y"}
    assert doc == {"a": {"b": [1, 2, 3]}, "c": "x"}  # the input is never mutated
    with pytest.raises(PatchError, match="non-existent"):
        apply_patch(doc, [{"op": "replace", "path": "/zz", "value": 1}])
    with pytest.raises(PatchError, match="not equal"):
        apply_patch(doc, [{"op": "test", "path": "/c", "value": "nope"}])
    with pytest.raises(PatchError, match="Unknown operation"):
        apply_patch(doc, [{"op": "frobnicate", "path": "/c"}])


def test_traffic_patch_is_atomic_and_admitted() -> None:
    store = ObjectStore()
    store.apply(SDEP)
    gen = store.generation
    ops = [
        {"op": "add", "path": "/spec/predictors/0/traffic", "value": 90},
        {"op": "add", "path": "/spec/predictors/1/traffic", "value": 10},
    ]
    store.patch("SeldonDeployment", "ns-production", "iris", ops)
    obj = store.get("SeldonDeployment", "ns-production", "iris")
    assert obj is not None
    assert [p["traffic"] for p in obj["spec"]["predictors"]] == [90, 10]
    assert store.generation == gen + 1
    # one field at a time fails admission, as Seldon's webhook does, and changes nothing
    with pytest.raises(PatchError, match="Traffic must sum to 100"):
        store.patch(
            "SeldonDeployment",
            "ns-production",
            "iris",
            ops[:1] + [{"op": "add", "path": "/spec/predictors/0/traffic", "value": 80}],
        )
    obj = store.get("SeldonDeployment", "ns-production", "iris")
    assert obj is not None and [p["traffic"] for p in obj["spec"]["predictors"]] == [90, 10]
    assert store.generation == gen + 1
    with pytest.raises(PatchError, match="not found"):
        store.patch("SeldonDeployment", "ns-production", "nope", ops)
