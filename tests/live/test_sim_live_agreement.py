"""Differential tests: the sim's object store, the Kubernetes API fake (official client, real HTTP)
and a reference built on the ``jsonpatch`` library agree on every write and every weight read.

Each hypothesis example is a SeldonDeployment (1-3 predictors; traffic omitted, ``null``, in and
out of range, of the wrong type; sometimes a shadow), a sequence of JSON patches (etc3-shaped
weight patches from generated weight vectors, some with the index ``01``, and arbitrary ops), and
a set of ``fieldPath``s to read back. The three sides must admit or reject the same writes, hold
identical specs after each one, and read identical weights (or all fail). The reference side is
written from the documents, not from simkit's code: ``jsonpatch`` for RFC 6902 and seldon-v1.md
§3.2 (restated in :func:`webhook_admits`) for admission.

The mutation tests put back, one at a time, each disagreement simkit had (the sim rejecting
traffic ``[-5, 105]``, the sim failing on an omitted ``traffic``, an index ``01`` accepted) and
check that the same property then fails.
"""

from __future__ import annotations

import copy
import itertools
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jsonpatch
import jsonpointer
import kubernetes
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

import simkit.live.kube_fakestore as fakestore
import simkit.sim.adapters as sim_adapters
import simkit.sim.objects as sim_objects
from simkit.errors import BackendError
from simkit.live.kube import KubeWeightActuator
from simkit.live.kubefake import KubeFake
from simkit.ports import ObjectRef, WeightRef
from simkit.sim.adapters import SimWeightActuator
from simkit.sim.objects import ObjectStore
from simkit.spec.experiment import field_path_to_pointer

NS = "ns-production"
GROUP, VERSION, PLURAL = "machinelearning.seldon.io", "v1", "seldondeployments"
OMIT = "<omitted>"
NAMES = ("baseline", "candidate", "challenger")
FIELD_PATHS = (
    ".spec.predictors[0].traffic",
    ".spec.predictors[1].traffic",
    ".spec.predictors[2].traffic",
    ".spec.predictors[0].shadow",
    ".spec.routes[0].weight",
)
_names = itertools.count()

# ----------------------------------------------------------------------------- the reference side


def webhook_admits(spec: Any) -> bool:
    """seldon-v1.md §3.2 restated: unique names, at most one shadow (never alone, traffic in
    [0, 100]); non-shadow traffic sums to 100 when there are several, is 0 or 100 when alone.
    Omitted/null traffic is 0 (Go's zero value after the API server prunes nulls); traffic is an
    int32 (the CRD schema)."""
    preds = spec.get("predictors") if isinstance(spec, dict) else None
    if not isinstance(preds, list) or not all(isinstance(p, dict) for p in preds):
        return False
    if len({str(p.get("name", "")) for p in preds}) != len(preds):
        return False
    traffic = [0 if p.get("traffic") is None else p["traffic"] for p in preds]
    if any(type(t) is not int or not -(2**31) <= t < 2**31 for t in traffic):
        return False
    shadow = [t for p, t in zip(preds, traffic, strict=True) if p.get("shadow")]
    normal = [t for p, t in zip(preds, traffic, strict=True) if not p.get("shadow")]
    if len(shadow) > 1 or (shadow and not normal) or any(not 0 <= t <= 100 for t in shadow):
        return False
    return sum(normal) == 100 if len(normal) > 1 else sum(normal) in (0, 100)


def reference_weight(doc: Any, pointer: str) -> int | None:
    """RFC 6901 with omitempty: a missing/null last member of an existing object is 0."""
    parts = jsonpointer.JsonPointer(pointer).parts
    try:
        parent = jsonpointer.JsonPointer.from_parts(parts[:-1]).resolve(doc)
        value = (
            parent.get(parts[-1]) if isinstance(parent, dict) else jsonpointer.resolve_pointer(doc, pointer)
        )
    except jsonpointer.JsonPointerException:
        return None
    value = 0 if value is None else value
    return value if type(value) is int and -(2**31) <= value < 2**31 else None


# ----------------------------------------------------------------------------- generated cases


@dataclass(frozen=True)
class Case:
    initial: dict[str, Any]
    patches: tuple[tuple[dict[str, Any], ...], ...]
    field_paths: tuple[str, ...]


TRAFFIC = st.one_of(st.integers(-10, 110), st.sampled_from([None, OMIT, True, 50.0, "50", 2**31]))


@st.composite
def weight_vectors(draw: st.DrawFn, n: int) -> list[Any]:
    """Mostly vectors summing to 100 (negatives included), else arbitrary values."""
    if draw(st.integers(0, 3)):
        head = draw(st.lists(st.integers(-10, 110), min_size=n - 1, max_size=n - 1))
        return [*head, 100 - sum(head)]
    return draw(st.lists(TRAFFIC, min_size=n, max_size=n))


@st.composite
def deployments(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 3))
    preds = []
    for i, traffic in enumerate(draw(weight_vectors(n))):
        p: dict[str, Any] = {
            "name": NAMES[i],
            "graph": {"name": "classifier", "implementation": "SKLEARN_SERVER"},
        }
        if traffic != OMIT:
            p["traffic"] = traffic
        if draw(st.sampled_from([False] * 5 + [True])):
            p["shadow"] = True
        preds.append(p)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SeldonDeployment",
        "metadata": {"namespace": NS},
        "spec": {"predictors": preds},
    }


@st.composite
def weight_patches(draw: st.DrawFn) -> tuple[dict[str, Any], ...]:
    """etc3's shape: one add/replace per predictor, values from a weight vector."""
    n = draw(st.integers(1, 3))
    op = draw(st.sampled_from(["add", "replace"]))
    ops = []
    for i, value in enumerate(draw(weight_vectors(n))):
        index = draw(st.sampled_from([str(i)] * 6 + [f"0{i}"]))
        if value != OMIT:
            ops.append({"op": op, "path": f"/spec/predictors/{index}/traffic", "value": value})
    return tuple(ops)


PATHS = [
    "/spec/predictors/0/traffic",
    "/spec/predictors/1/traffic",
    "/spec/predictors/2/traffic",
    "/spec/predictors/1",
    "/spec/predictors/-",
    "/spec/predictors/01/traffic",
    "/spec/predictors/0/shadow",
    "/spec/predictors",
    "/spec/nothing/here",
]


@st.composite
def any_ops(draw: st.DrawFn) -> tuple[dict[str, Any], ...]:
    ops = []
    for _ in range(draw(st.integers(1, 3))):
        op: dict[str, Any] = {
            "op": draw(st.sampled_from(["add", "replace", "remove", "test", "move", "copy"])),
            "path": draw(st.sampled_from(PATHS)),
        }
        if op["op"] in ("move", "copy"):
            op["from"] = draw(st.sampled_from(PATHS))
        elif op["op"] != "remove":
            op["value"] = draw(
                st.one_of(
                    TRAFFIC.filter(lambda v: v != OMIT),
                    st.just({"name": "extra", "graph": {"name": "g"}, "traffic": 0}),
                )
            )
        ops.append(op)
    return tuple(ops)


CASES = st.builds(
    Case,
    deployments(),
    st.lists(st.one_of(weight_patches(), any_ops()), min_size=1, max_size=4).map(tuple),
    st.lists(st.sampled_from(FIELD_PATHS), min_size=1, max_size=3, unique=True).map(tuple),
)


def _sdep(preds: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SeldonDeployment",
        "metadata": {"namespace": NS},
        "spec": {"predictors": preds},
    }


def _pred(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "graph": {"name": "classifier"}, **extra}


# the disagreements simkit had, as explicit examples every run (and every mutation run) tries
KNOWN = [
    Case(
        _sdep([_pred("baseline", traffic=100), _pred("candidate", traffic=0)]),
        (
            (
                {"op": "add", "path": "/spec/predictors/0/traffic", "value": -5},
                {"op": "add", "path": "/spec/predictors/1/traffic", "value": 105},
            ),
        ),
        (".spec.predictors[0].traffic",),
    ),
    Case(_sdep([_pred("baseline", traffic=100), _pred("candidate")]), (), (".spec.predictors[1].traffic",)),
    Case(
        _sdep([_pred("baseline", traffic=None), _pred("candidate", traffic=100)]),
        (),
        (".spec.predictors[0].traffic",),
    ),
    Case(
        _sdep([_pred("baseline", traffic=100), _pred("candidate", traffic=0)]),
        (
            (
                {"op": "replace", "path": "/spec/predictors/00/traffic", "value": 90},
                {"op": "replace", "path": "/spec/predictors/01/traffic", "value": 10},
            ),
        ),
        (".spec.predictors[1].traffic",),
    ),
]


# ----------------------------------------------------------------------------- the three sides

Outcome = tuple[list[Any], dict[str, int | None]]


def refs_for(name: str, field_paths: tuple[str, ...]) -> list[WeightRef]:
    obj = ObjectRef(f"{GROUP}/{VERSION}", "SeldonDeployment", NS, name)
    return [WeightRef(fp, obj, fp, field_path_to_pointer(fp)) for fp in field_paths]


def read_each(
    read: Callable[[list[WeightRef]], dict[str, int]], refs: list[WeightRef]
) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for ref in refs:
        try:
            out[ref.version] = read([ref])[ref.version]
        except BackendError:
            out[ref.version] = None
    return out


def reference_side(case: Case) -> Outcome:
    doc = copy.deepcopy(case.initial)
    if not webhook_admits(doc["spec"]):
        return ["rejected"], {}
    steps: list[Any] = [doc["spec"]]
    for ops in case.patches:
        try:
            new = jsonpatch.apply_patch(doc, list(ops))
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException):
            steps.append("rejected")
            continue
        if not isinstance(new.get("spec"), dict) or not webhook_admits(new["spec"]):
            steps.append("rejected")
            continue
        doc = new
        steps.append(doc["spec"])
    return steps, {fp: reference_weight(doc, field_path_to_pointer(fp)) for fp in case.field_paths}


def sim_side(case: Case, name: str) -> Outcome:
    store = ObjectStore()
    obj = copy.deepcopy(case.initial)
    obj["metadata"]["name"] = name
    try:
        store.apply(obj)
    except BackendError:
        return ["rejected"], {}
    steps: list[Any] = [copy.deepcopy(obj["spec"])]
    for ops in case.patches:
        try:
            steps.append(copy.deepcopy(store.patch("SeldonDeployment", NS, name, ops)["spec"]))
        except BackendError:
            steps.append("rejected")
    actuator = SimWeightActuator(types.SimpleNamespace(store=store))  # type: ignore[arg-type]
    return steps, read_each(actuator.read, refs_for(name, case.field_paths))


def fake_side(case: Case, name: str, api_client: kubernetes.client.ApiClient) -> Outcome:
    custom = kubernetes.client.CustomObjectsApi(api_client)
    body = copy.deepcopy(case.initial)
    body["metadata"]["name"] = name
    try:
        created = custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, body)
    except kubernetes.client.ApiException as exc:
        assert exc.status == 422, exc
        return ["rejected"], {}
    steps: list[Any] = [created["spec"]]
    for ops in case.patches:
        try:
            out = custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                NS,
                PLURAL,
                name,
                [dict(o) for o in ops],
                _content_type="application/json-patch+json",
            )
            steps.append(out["spec"])
        except kubernetes.client.ApiException as exc:
            assert exc.status == 422, exc
            steps.append("rejected")
    actuator = KubeWeightActuator(api_client, NS, timeout=5)
    return steps, read_each(actuator.read, refs_for(name, case.field_paths))


def check_agreement(case: Case, api_client: kubernetes.client.ApiClient) -> None:
    name = f"d{next(_names)}"
    ref = reference_side(case)
    sim = sim_side(case, name)
    fake = fake_side(case, name, api_client)
    assert sim == ref, f"sim and the jsonpatch reference disagree on {case}"
    assert fake == ref, f"the Kubernetes API fake and the jsonpatch reference disagree on {case}"


# ----------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def client() -> Iterator[kubernetes.client.ApiClient]:
    fake = KubeFake()
    fake.cluster.load([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}])
    fake.start()
    cfg = kubernetes.client.Configuration(host=fake.url)
    cfg.retries = 0
    try:
        with kubernetes.client.ApiClient(cfg) as api:
            yield api
    finally:
        fake.stop()


def _property(api_client: kubernetes.client.ApiClient, max_examples: int, phases: tuple[Phase, ...]) -> None:
    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        phases=phases,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(case=CASES)
    def prop(case: Case) -> None:
        check_agreement(case, api_client)

    for known in KNOWN:
        prop = example(case=known)(prop)
    prop()


def test_sim_fake_and_jsonpatch_agree(client: kubernetes.client.ApiClient) -> None:
    _property(client, 60, (Phase.explicit, Phase.generate, Phase.shrink))


def test_the_known_cases_read_as_the_cluster_does(client: kubernetes.client.ApiClient) -> None:
    """Pin the answers themselves, not only agreement: [-5, 105] is admitted (the webhook checks
    the sum only), an omitted or null traffic reads 0, the index 01 is rejected."""
    assert sim_side(KNOWN[0], "pin0")[0][1]["predictors"][1]["traffic"] == 105
    assert sim_side(KNOWN[1], "pin1")[1] == {".spec.predictors[1].traffic": 0}
    assert fake_side(KNOWN[2], "pin2", client)[1] == {".spec.predictors[0].traffic": 0}
    assert fake_side(KNOWN[3], "pin3", client)[0][1] == "rejected"


def _reject_out_of_range(obj: Any) -> str | None:
    preds = (obj.get("spec") or {}).get("predictors") or []
    if any(isinstance(p.get("traffic"), int) and not 0 <= p["traffic"] <= 100 for p in preds):
        return "traffic must be in [0, 100]"
    return sim_objects_admission(obj)


sim_objects_admission = sim_objects.admission_problem


def _omitted_is_an_error(doc: Any, pointer: str) -> int:
    parts = jsonpointer.JsonPointer(pointer).parts
    parent = jsonpointer.JsonPointer.from_parts(parts[:-1]).resolve(doc, None)
    if isinstance(parent, dict) and parts[-1] not in parent:
        raise ValueError("no such field")
    return sim_weight_at(doc, pointer)


sim_weight_at = sim_adapters.weight_at


def _leading_zero_index(doc: Any, ops: Any) -> Any:
    fixed = [dict(o, path=o["path"].replace("/00/", "/0/").replace("/01/", "/1/")) for o in ops]
    return fake_apply(doc, fixed)


fake_apply = fakestore.apply_json_patch


@pytest.mark.parametrize(
    ("module", "attr", "mutant"),
    [
        (sim_objects, "admission_problem", _reject_out_of_range),
        (sim_adapters, "weight_at", _omitted_is_an_error),
        (fakestore, "apply_json_patch", _leading_zero_index),
    ],
    ids=["sim-rejects-out-of-range-traffic", "sim-omitted-traffic-is-an-error", "fake-accepts-index-01"],
)
def test_a_mutated_side_is_caught(
    client: kubernetes.client.ApiClient, monkeypatch: pytest.MonkeyPatch, module: Any, attr: str, mutant: Any
) -> None:
    monkeypatch.setattr(module, attr, mutant)
    with pytest.raises(AssertionError, match="disagree"):
        _property(client, 30, (Phase.explicit, Phase.generate))
