"""KubeWeightActuator against the Kubernetes API fake, over HTTP with the official client."""

from __future__ import annotations

import base64
from pathlib import Path

import kubernetes
import pytest

from simkit.errors import BackendError, ConflictError
from simkit.live.kube import KubeObjects, KubeWeightActuator, load_kube_client, weight_at
from simkit.live.kubefake import KubeFake, kubeconfig_text
from simkit.ports import ObjectPatch, ObjectRef, WeightRef

NS = "ns-production"
SDEP = ObjectRef("machinelearning.seldon.io/v1", "SeldonDeployment", NS, "iris")
SDEP_PATH = "/apis/machinelearning.seldon.io/v1/namespaces/ns-production/seldondeployments/iris"
VS = ObjectRef("networking.istio.io/v1alpha3", "VirtualService", "default", "routing-rule")
SDEP_REFS = (
    WeightRef("iris-v1", SDEP, ".spec.predictors[0].traffic", "/spec/predictors/0/traffic"),
    WeightRef("iris-v2", SDEP, ".spec.predictors[1].traffic", "/spec/predictors/1/traffic"),
)
VS_REFS = (
    WeightRef("iris-v1", VS, ".spec.http[0].route[0].weight", "/spec/http/0/route/0/weight"),
    WeightRef("iris-v2", VS, ".spec.http[0].route[1].weight", "/spec/http/0/route/1/weight"),
)


def sdep_patch(a: int, b: int, obj: ObjectRef = SDEP) -> ObjectPatch:
    return ObjectPatch(
        obj,
        (
            {"op": "add", "path": "/spec/predictors/0/traffic", "value": a},
            {"op": "add", "path": "/spec/predictors/1/traffic", "value": b},
        ),
    )


def stored_traffic(fake: KubeFake) -> list[object]:
    obj = fake.cluster.object("SeldonDeployment", NS, "iris")
    assert obj is not None
    return [p.get("traffic") for p in obj["spec"]["predictors"]]


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def actuator(api_client: kubernetes.client.ApiClient, sleeps: list[float]) -> KubeWeightActuator:
    return KubeWeightActuator(
        api_client, "default", timeout=5, max_attempts=3, backoff=0.5, sleep=sleeps.append
    )


def test_reads_seed_weights_from_sdep_and_virtualservice(
    actuator: KubeWeightActuator, kube_fake: KubeFake
) -> None:
    assert actuator.read(SDEP_REFS) == {"iris-v1": 100, "iris-v2": 0}
    assert actuator.read(VS_REFS) == {"iris-v1": 100, "iris-v2": 0}
    assert kube_fake.cluster.count("GET", SDEP_PATH) == 1  # both refs share one read


def test_applies_one_json_patch_and_reads_back(actuator: KubeWeightActuator, kube_fake: KubeFake) -> None:
    actuator.apply([sdep_patch(90, 10)])
    assert stored_traffic(kube_fake) == [90, 10]
    patches = [r for r in kube_fake.cluster.requests if r.method == "PATCH"]
    assert [(r.path, r.content_type) for r in patches] == [(SDEP_PATH, "application/json-patch+json")]
    assert kube_fake.cluster.count("GET", SDEP_PATH) == 2  # before (target check) and after (read-back)
    assert actuator.read(SDEP_REFS) == {"iris-v1": 90, "iris-v2": 10}


def test_patches_virtualservice_weights(actuator: KubeWeightActuator, kube_fake: KubeFake) -> None:
    actuator.apply(
        [
            ObjectPatch(
                VS,
                (
                    {"op": "add", "path": "/spec/http/0/route/0/weight", "value": 30},
                    {"op": "add", "path": "/spec/http/0/route/1/weight", "value": 70},
                ),
            )
        ]
    )
    assert actuator.read(VS_REFS) == {"iris-v1": 30, "iris-v2": 70}


def test_conflict_once_is_retried_after_backoff(
    actuator: KubeWeightActuator, kube_fake: KubeFake, sleeps: list[float]
) -> None:
    kube_fake.cluster.fail_next("SeldonDeployment", NS, "iris", count=1)
    actuator.apply([sdep_patch(80, 20)])
    assert stored_traffic(kube_fake) == [80, 20]
    assert kube_fake.cluster.count("PATCH", SDEP_PATH) == 2
    assert sleeps == [0.5]


def test_conflict_forever_gives_conflict_error(
    actuator: KubeWeightActuator, kube_fake: KubeFake, sleeps: list[float]
) -> None:
    kube_fake.cluster.fail_next("SeldonDeployment", NS, "iris", count=100)
    with pytest.raises(ConflictError) as err:
        actuator.apply([sdep_patch(80, 20)])
    assert "SeldonDeployment ns-production/iris" in str(err.value) and "3 attempts" in str(err.value)
    assert "\n" not in str(err.value)
    assert kube_fake.cluster.count("PATCH", SDEP_PATH) == 3
    assert sleeps == [0.5, 1.0]  # exponential backoff between the attempts
    assert stored_traffic(kube_fake) == [100, 0]


def test_missing_object_is_a_clear_error_and_nothing_is_patched(
    actuator: KubeWeightActuator, kube_fake: KubeFake
) -> None:
    ghost = ObjectRef("machinelearning.seldon.io/v1", "SeldonDeployment", NS, "iris-typo")
    refs = [WeightRef("iris-v2", ghost, ".spec.predictors[1].traffic", "/spec/predictors/1/traffic")]
    with pytest.raises(BackendError) as err:
        actuator.read(refs)
    assert str(err.value) == (
        "SeldonDeployment ns-production/iris-typo not found (weightObjRef of version iris-v2)"
    )
    with pytest.raises(BackendError) as err:
        actuator.apply([sdep_patch(90, 10, ghost)])
    assert "SeldonDeployment ns-production/iris-typo not found" in str(err.value)
    assert kube_fake.cluster.count("PATCH") == 0


def test_field_path_into_nothing_is_refused_before_patching(
    actuator: KubeWeightActuator, kube_fake: KubeFake
) -> None:
    refs = [WeightRef("iris-v3", SDEP, ".spec.predictors[2].traffic", "/spec/predictors/2/traffic")]
    with pytest.raises(BackendError, match=r"cannot read \.spec\.predictors\[2\]\.traffic.*iris-v3"):
        actuator.read(refs)
    bad = ObjectPatch(SDEP, ({"op": "add", "path": "/spec/predictor/0/traffic", "value": 10},))
    with pytest.raises(BackendError, match="cannot patch"):
        actuator.apply([bad])
    assert kube_fake.cluster.count("PATCH") == 0


def test_patch_not_summing_to_100_is_rejected_and_object_unchanged(
    actuator: KubeWeightActuator, kube_fake: KubeFake
) -> None:
    before = kube_fake.cluster.object("SeldonDeployment", NS, "iris")
    with pytest.raises(BackendError) as err:
        actuator.apply([sdep_patch(90, 20)])
    assert "HTTP 422" in str(err.value) and "Traffic must sum to 100" in str(err.value)
    assert kube_fake.cluster.object("SeldonDeployment", NS, "iris") == before


def test_values_already_in_place_are_not_sent(actuator: KubeWeightActuator, kube_fake: KubeFake) -> None:
    actuator.apply([sdep_patch(100, 0)])
    assert kube_fake.cluster.count("PATCH") == 0


def test_read_back_mismatch_is_reported(api_client: kubernetes.client.ApiClient, kube_fake: KubeFake) -> None:
    """Another writer (simulated by a read that mutates the object right after the patch)."""

    class Meddling(KubeObjects):
        def json_patch(self, obj: ObjectRef, ops: object, purpose: str = "") -> dict[str, object]:
            out = super().json_patch(obj, ops, purpose)  # type: ignore[arg-type]
            kube_fake.cluster.mutate(
                "SeldonDeployment",
                NS,
                "iris",
                json_patch=[
                    {"op": "replace", "path": "/spec/predictors/0/traffic", "value": 100},
                    {"op": "replace", "path": "/spec/predictors/1/traffic", "value": 0},
                ],
            )
            return out

    act = KubeWeightActuator(api_client, "default", timeout=5)
    act.objects = Meddling(api_client, "default", 5)
    with pytest.raises(
        BackendError, match=r"after patching, \.spec\.predictors\[0\]\.traffic is 100, expected 90"
    ):
        act.apply([sdep_patch(90, 10)])


def test_omitted_traffic_reads_as_zero() -> None:
    doc = {"spec": {"predictors": [{"name": "a", "traffic": 100}, {"name": "b"}]}}
    assert weight_at(doc, "/spec/predictors/1/traffic") == 0
    with pytest.raises(ValueError, match="not an integer"):
        weight_at({"spec": {"w": "ten"}}, "/spec/w")
    with pytest.raises(ValueError, match="no such field"):
        weight_at(doc, "/spec/predictors/5/traffic")


def test_unreachable_api_is_one_line(kube_fake: KubeFake) -> None:
    cfg = kubernetes.client.Configuration(host=kube_fake.url)
    cfg.retries = 0
    kube_fake.stop()
    with kubernetes.client.ApiClient(cfg) as api, pytest.raises(BackendError) as err:
        KubeWeightActuator(api, "default", timeout=2).read(SDEP_REFS)
    assert str(err.value).startswith(f"cannot reach the Kubernetes API at {kube_fake.url}")


def test_read_experiment_metric_and_secret(
    api_client: kubernetes.client.ApiClient, kube_fake: KubeFake
) -> None:
    kube_fake.cluster.load(
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "iter8-seldon"}},
            {
                "apiVersion": "iter8.tools/v2alpha2",
                "kind": "Metric",
                "metadata": {"name": "mean-latency", "namespace": "iter8-seldon"},
                "spec": {"type": "Gauge"},
            },
            {
                "apiVersion": "iter8.tools/v2alpha2",
                "kind": "Experiment",
                "metadata": {"name": "quickstart-exp"},
                "spec": {"target": "iris"},
            },
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "prom", "namespace": "iter8-seldon"},
                "data": {
                    "token": base64.b64encode(b"t0ken").decode(),
                    "user": base64.b64encode("zoë".encode()).decode(),
                },
            },
        ]
    )
    objs = KubeObjects(api_client, "default", timeout=5)
    assert objs.read_experiment("quickstart-exp")["spec"] == {"target": "iris"}
    assert objs.read_metric("mean-latency", "iter8-seldon")["spec"]["type"] == "Gauge"
    assert objs.read_secret("iter8-seldon", "prom") == {"token": "t0ken", "user": "zoë"}
    with pytest.raises(BackendError, match=r"^Secret iter8-seldon/nope not found"):
        objs.read_secret("iter8-seldon", "nope")
    with pytest.raises(BackendError, match="Experiment default/other not found"):
        objs.read_experiment("other")


def test_unknown_kind_goes_through_discovery(api_client: kubernetes.client.ApiClient) -> None:
    objs = KubeObjects(api_client, "default", timeout=5)
    ref = ObjectRef("networking.istio.io/v1beta1", "Gateway", "default", "gw")
    with pytest.raises(
        BackendError, match="the cluster serves no kind Gateway in networking.istio.io/v1beta1"
    ):
        objs.get(ref)
    assert objs.plural(ObjectRef("machinelearning.seldon.io/v1alpha2", "SeldonDeployment", "x", "y")) == (
        "machinelearning.seldon.io",
        "v1alpha2",
        "seldondeployments",
    )


def test_load_kube_client_errors_and_success(tmp_path: Path, kube_fake: KubeFake) -> None:
    with pytest.raises(BackendError, match=r"kubeconfig .*/missing not found"):
        load_kube_client(str(tmp_path / "missing"))
    garbage = tmp_path / "garbage"
    garbage.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n")
    with pytest.raises(BackendError, match=f"kubeconfig {garbage}"):
        load_kube_client(str(garbage))
    good = tmp_path / "kubeconfig"
    good.write_text(kubeconfig_text(kube_fake.url))
    with pytest.raises(BackendError, match="nope"):
        load_kube_client(str(good), context="nope")
    api = load_kube_client(str(good), context="fake")
    try:
        assert KubeWeightActuator(api, "default").read(SDEP_REFS) == {"iris-v1": 100, "iris-v2": 0}
    finally:
        api.close()
