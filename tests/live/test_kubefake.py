"""The Kubernetes API fake, driven over real HTTP by the official kubernetes client (37.0.2)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import urllib3
from kubernetes.client import ApiException, CustomObjectsApi

from simkit.live.kubefake import KubeFake

G, V, NS, PL, NAME = "machinelearning.seldon.io", "v1", "ns-production", "seldondeployments", "iris"
SDEP_PATH = f"/apis/{G}/{V}/namespaces/{NS}/{PL}/{NAME}"
JSON_PATCH = "application/json-patch+json"
# CustomObjectsApi methods are typed to return `object`; these tests index the dicts they return
Custom = Any


def _traffic(obj: dict[str, Any]) -> list[Any]:
    return [p.get("traffic") for p in obj["spec"]["predictors"]]


def _ops(a: int, b: int) -> list[dict[str, Any]]:
    return [
        {"op": "add", "path": "/spec/predictors/0/traffic", "value": a},
        {"op": "add", "path": "/spec/predictors/1/traffic", "value": b},
    ]


def _status(exc: ApiException) -> dict[str, Any]:
    body = json.loads(exc.body or "")
    assert body["kind"] == "Status" and body["code"] == exc.status
    return body


def test_discovery_lists_seldon_istio_iter8_and_core(api_client: kubernetes.client.ApiClient) -> None:
    groups = {
        g.name: [v.version for v in g.versions]
        for g in kubernetes.client.ApisApi(api_client).get_api_versions().groups
    }
    assert groups[G] == ["v1", "v1alpha2", "v1alpha3"]
    assert set(groups["networking.istio.io"]) == {"v1beta1", "v1alpha3"}
    assert groups["iter8.tools"] == ["v2alpha2"]
    res = CustomObjectsApi(api_client).get_api_resources("iter8.tools", "v2alpha2")
    assert {r.name: r.kind for r in res.resources if "/" not in r.name} == {
        "experiments": "Experiment",
        "metrics": "Metric",
    }
    core = kubernetes.client.CoreV1Api(api_client).get_api_resources()
    assert {"namespaces", "secrets"} <= {r.name for r in core.resources}
    assert kubernetes.client.VersionApi(api_client).get_code().major == "1"


def test_get_seed_objects_with_server_fields(custom: Custom) -> None:
    sdep = custom.get_namespaced_custom_object(G, V, NS, PL, NAME)
    assert _traffic(sdep) == [100, 0]
    meta = sdep["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z") and meta["generation"] == 1
    assert int(meta["resourceVersion"]) > 0
    vs = custom.get_namespaced_custom_object(
        "networking.istio.io", "v1alpha3", "default", "virtualservices", "routing-rule"
    )
    assert [r["weight"] for r in vs["spec"]["http"][0]["route"]] == [100, 0]
    # the same stored object is served at every version of the CRD
    vs_beta = custom.get_namespaced_custom_object(
        "networking.istio.io", "v1beta1", "default", "virtualservices", "routing-rule"
    )
    assert vs_beta["apiVersion"] == "networking.istio.io/v1beta1"
    assert vs_beta["metadata"]["uid"] == vs["metadata"]["uid"]


def test_create_201_then_409_already_exists_and_404(custom: Custom, kube_fake: KubeFake) -> None:
    metric = {
        "apiVersion": "iter8.tools/v2alpha2",
        "kind": "Metric",
        "metadata": {"name": "request-count"},
        "spec": {"type": "Counter", "provider": "prometheus"},
    }
    created, code, _ = custom.create_namespaced_custom_object_with_http_info(
        "iter8.tools", "v2alpha2", "default", "metrics", metric
    )
    assert code == 201 and created["metadata"]["namespace"] == "default"
    with pytest.raises(ApiException) as conflict:
        custom.create_namespaced_custom_object("iter8.tools", "v2alpha2", "default", "metrics", metric)
    assert conflict.value.status == 409 and _status(conflict.value)["reason"] == "AlreadyExists"
    with pytest.raises(ApiException) as missing:
        custom.get_namespaced_custom_object("iter8.tools", "v2alpha2", "default", "metrics", "nope")
    body = _status(missing.value)
    assert missing.value.status == 404 and body["reason"] == "NotFound"
    assert body["message"] == 'metrics.iter8.tools "nope" not found'
    with pytest.raises(ApiException) as no_ns:  # a namespace that does not exist
        custom.create_namespaced_custom_object("iter8.tools", "v2alpha2", "iter8-seldon", "metrics", metric)
    assert no_ns.value.status == 404 and "namespaces" in _status(no_ns.value)["message"]


def test_list_has_list_kind_and_resource_version(custom: Custom) -> None:
    listed = custom.list_namespaced_custom_object(G, V, NS, PL)
    assert listed["kind"] == "SeldonDeploymentList" and listed["apiVersion"] == f"{G}/{V}"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["iris"]
    assert int(listed["metadata"]["resourceVersion"]) >= int(
        listed["items"][0]["metadata"]["resourceVersion"]
    )
    everywhere = custom.list_cluster_custom_object("networking.istio.io", "v1alpha3", "virtualservices")
    assert [i["metadata"]["name"] for i in everywhere["items"]] == ["routing-rule"]
    assert custom.list_namespaced_custom_object(G, V, "default", PL)["items"] == []


def test_json_patch_with_content_type_moves_traffic_and_bumps_rv(custom: Custom) -> None:
    before = custom.get_namespaced_custom_object(G, V, NS, PL, NAME)
    after = custom.patch_namespaced_custom_object(G, V, NS, PL, NAME, _ops(90, 10), _content_type=JSON_PATCH)
    assert _traffic(after) == [90, 10]
    assert int(after["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    assert after["metadata"]["generation"] == 2
    assert _traffic(custom.get_namespaced_custom_object(G, V, NS, PL, NAME)) == [90, 10]


def test_json_patch_list_sent_as_merge_patch_is_400(custom: Custom) -> None:
    """The official client's pitfall: without _content_type a list body goes out as merge-patch."""
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object(G, V, NS, PL, NAME, _ops(90, 10))
    assert err.value.status == 400
    assert _traffic(custom.get_namespaced_custom_object(G, V, NS, PL, NAME)) == [100, 0]


def test_merge_patch_and_stale_resource_version(custom: Custom) -> None:
    current = custom.get_namespaced_custom_object(G, V, NS, PL, NAME)
    patched = custom.patch_namespaced_custom_object(
        G, V, NS, PL, NAME, {"metadata": {"labels": {"team": "ml"}}}
    )
    assert patched["metadata"]["labels"] == {"team": "ml"} and patched["metadata"]["generation"] == 1
    stale = {"metadata": {"resourceVersion": current["metadata"]["resourceVersion"], "labels": {"team": "x"}}}
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object(G, V, NS, PL, NAME, stale)
    assert err.value.status == 409 and _status(err.value)["reason"] == "Conflict"
    assert custom.get_namespaced_custom_object(G, V, NS, PL, NAME)["metadata"]["labels"] == {"team": "ml"}


def test_strategic_merge_on_custom_resource_is_415(custom: Custom) -> None:
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object(
            G,
            V,
            NS,
            PL,
            NAME,
            {"metadata": {"labels": {"a": "b"}}},
            _content_type="application/strategic-merge-patch+json",
        )
    assert err.value.status == 415


def test_replace_checks_resource_version(custom: Custom) -> None:
    obj = custom.get_namespaced_custom_object(G, V, NS, PL, NAME)
    obj["spec"]["predictors"][0]["traffic"], obj["spec"]["predictors"][1]["traffic"] = 60, 40
    replaced = custom.replace_namespaced_custom_object(G, V, NS, PL, NAME, obj)
    assert _traffic(replaced) == [60, 40]
    assert replaced["metadata"]["uid"] == obj["metadata"]["uid"]
    obj["spec"]["predictors"][0]["traffic"], obj["spec"]["predictors"][1]["traffic"] = 50, 50  # stale RV now
    with pytest.raises(ApiException) as err:
        custom.replace_namespaced_custom_object(G, V, NS, PL, NAME, obj)
    assert err.value.status == 409
    assert _traffic(custom.get_namespaced_custom_object(G, V, NS, PL, NAME)) == [60, 40]


@pytest.mark.parametrize(
    "ops", [_ops(90, 0), [{"op": "add", "path": "/spec/predictors/1/traffic", "value": 10}]]
)
def test_seldon_webhook_rejects_traffic_not_summing_to_100(custom: Custom, ops: list[Any]) -> None:
    before = custom.get_namespaced_custom_object(G, V, NS, PL, NAME)
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object(G, V, NS, PL, NAME, ops, _content_type=JSON_PATCH)
    body = _status(err.value)
    assert err.value.status == 422 and body["reason"] == "Invalid"
    assert "Traffic must sum to 100 for multiple predictors" in body["message"]
    after = custom.get_namespaced_custom_object(G, V, NS, PL, NAME)
    assert after == before  # unchanged, resourceVersion included


def test_seldon_webhook_on_create_and_replace(custom: Custom) -> None:
    bad: Any = {
        "apiVersion": f"{G}/{V}",
        "kind": "SeldonDeployment",
        "metadata": {"name": "iris2"},
        "spec": {"predictors": [{"name": "a", "traffic": 50}, {"name": "b", "traffic": 40}]},
    }
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(G, V, NS, PL, bad)
    assert err.value.status == 422
    bad["spec"]["predictors"][1]["shadow"] = True  # shadows are left out of the sum... 50 alone is not 100
    with pytest.raises(ApiException):
        custom.create_namespaced_custom_object(G, V, NS, PL, bad)
    bad["spec"]["predictors"][0]["traffic"] = 100
    assert custom.create_namespaced_custom_object(G, V, NS, PL, bad)["metadata"]["name"] == "iris2"
    obj = custom.get_namespaced_custom_object(G, V, NS, PL, NAME)
    obj["spec"]["predictors"][0]["traffic"] = 99
    with pytest.raises(ApiException) as err:
        custom.replace_namespaced_custom_object(G, V, NS, PL, NAME, obj)
    assert err.value.status == 422


def test_watch_streams_added_modified_deleted_and_honours_timeout(
    custom: Custom, kube_fake: KubeFake
) -> None:
    def writer() -> None:
        time.sleep(0.2)
        kube_fake.cluster.mutate("SeldonDeployment", NS, NAME, json_patch=_ops(80, 20))
        custom.delete_namespaced_custom_object(G, V, NS, PL, NAME)

    thread = threading.Thread(target=writer)
    thread.start()
    seen = []
    watch = kubernetes.watch.Watch()
    # timeoutSeconds must end the stream; the client's read timeout only guards against a hang
    for event in watch.stream(
        custom.list_namespaced_custom_object, G, V, NS, PL, timeout_seconds=1, _request_timeout=20
    ):
        seen.append(
            (event["type"], _traffic(event["object"]), event["object"]["metadata"]["resourceVersion"])
        )
    thread.join()
    assert [(t, tr) for t, tr, _ in seen] == [
        ("ADDED", [100, 0]),
        ("MODIFIED", [80, 20]),
        ("DELETED", [80, 20]),
    ]
    rvs = [int(rv) for _, _, rv in seen]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3  # events carry the stamped resourceVersion


def test_watch_from_resource_version_replays_only_later_events(custom: Custom, kube_fake: KubeFake) -> None:
    rv = custom.get_namespaced_custom_object(G, V, NS, PL, NAME)["metadata"]["resourceVersion"]
    kube_fake.cluster.mutate("sdep", NS, NAME, json_patch=_ops(70, 30))
    events = list(
        kubernetes.watch.Watch().stream(
            custom.list_namespaced_custom_object,
            G,
            V,
            NS,
            PL,
            resource_version=rv,
            timeout_seconds=1,
            _request_timeout=20,
        )
    )
    assert [(e["type"], _traffic(e["object"])) for e in events] == [("MODIFIED", [70, 30])]


def test_injected_conflicts_and_request_counts(custom: Custom, kube_fake: KubeFake) -> None:
    kube_fake.cluster.fail_next("SeldonDeployment", NS, NAME, count=2)
    for _ in range(2):
        with pytest.raises(ApiException) as err:
            custom.patch_namespaced_custom_object(G, V, NS, PL, NAME, _ops(90, 10), _content_type=JSON_PATCH)
        assert err.value.status == 409
    assert _traffic(
        custom.patch_namespaced_custom_object(G, V, NS, PL, NAME, _ops(90, 10), _content_type=JSON_PATCH)
    ) == [90, 10]
    assert kube_fake.cluster.count("PATCH", SDEP_PATH) == 3
    assert kube_fake.cluster.count("GET", SDEP_PATH) == 0
    assert [r.content_type for r in kube_fake.cluster.requests if r.method == "PATCH"] == [JSON_PATCH] * 3


def test_secret_string_data_is_stored_base64(api_client: kubernetes.client.ApiClient) -> None:
    core: Any = kubernetes.client.CoreV1Api(api_client)
    core.create_namespaced_secret(
        "default",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "prom"},
            "stringData": {"token": "s3cr3t"},
        },
    )
    secret = core.read_namespaced_secret("prom", "default")
    assert secret.data == {"token": "czNjcjN0"} and secret.string_data is None


def test_stop_ends_an_open_watch_and_closes_the_port() -> None:
    fake = KubeFake().start()
    api = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=fake.url))
    custom: Custom = CustomObjectsApi(api)
    done = threading.Event()

    def watcher() -> None:
        for _ in kubernetes.watch.Watch().stream(
            custom.list_namespaced_custom_object, G, V, "default", PL, timeout_seconds=60
        ):
            pass
        done.set()

    thread = threading.Thread(target=watcher, daemon=True)
    thread.start()
    time.sleep(0.2)
    fake.stop()
    assert done.wait(10), "an open watch must end when the fake stops"
    api.close()
    cfg = kubernetes.client.Configuration(host=fake.url)
    cfg.retries = 0
    with kubernetes.client.ApiClient(cfg) as fresh, pytest.raises(urllib3.exceptions.HTTPError):
        CustomObjectsApi(fresh).list_namespaced_custom_object(G, V, "default", PL, _request_timeout=5)


def test_stop_drops_kept_alive_connections(kube_fake: KubeFake, custom: Custom) -> None:
    assert custom.get_namespaced_custom_object(G, V, NS, PL, NAME)["metadata"]["name"] == NAME  # pooled now
    kube_fake.stop()
    with pytest.raises(urllib3.exceptions.HTTPError):
        custom.get_namespaced_custom_object(G, V, NS, PL, NAME, _request_timeout=5)


def test_subprocess_entry_point_loads_manifests_and_stops_on_sigterm(
    tmp_path: Path, seed_manifest_file: Path
) -> None:
    port_file, kubeconfig = tmp_path / "port", tmp_path / "kubeconfig"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simkit.live.kubefake",
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--kubeconfig-file",
            str(kubeconfig),
            "--load",
            str(seed_manifest_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(200):
            if port_file.exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert port_file.exists(), proc.stderr.read() if proc.stderr else ""
        port = int(port_file.read_text())
        api = kubernetes.config.new_client_from_config(str(kubeconfig), persist_config=False)
        assert api.configuration.host == f"http://127.0.0.1:{port}"
        sdep: Any = CustomObjectsApi(api).get_namespaced_custom_object(G, V, NS, PL, NAME)
        assert _traffic(sdep) == [100, 0]
        api.close()
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "loaded SeldonDeployment ns-production/iris" in out
    assert "loaded VirtualService default/routing-rule" in out


def test_subprocess_reports_a_bad_manifest_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "simkit.live.kubefake", "--port", "0", "--load", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Widget" in proc.stderr and "bad.yaml" in proc.stderr


def test_status_subresource_is_separate_from_the_main_resource(custom: Custom) -> None:
    exp = {
        "apiVersion": "iter8.tools/v2alpha2",
        "kind": "Experiment",
        "metadata": {"name": "quickstart-exp"},
        "spec": {"target": "iris"},
    }
    args = ("iter8.tools", "v2alpha2", "default", "experiments", "quickstart-exp")
    custom.create_namespaced_custom_object(*args[:4], exp)
    out = custom.patch_namespaced_custom_object_status(*args, {"status": {"stage": "Running"}})
    assert out["status"] == {"stage": "Running"} and out["metadata"]["generation"] == 1
    ignored = custom.patch_namespaced_custom_object(
        *args, {"status": {"stage": "Completed"}, "spec": {"target": "x"}}
    )
    assert ignored["status"] == {"stage": "Running"} and ignored["spec"] == {"target": "x"}
    assert ignored["metadata"]["generation"] == 2


def test_admin_endpoints_for_a_fake_in_another_process(kube_fake: KubeFake, custom: Custom) -> None:
    import httpx

    armed = httpx.post(
        f"{kube_fake.url}/_fake/faults",
        timeout=5,
        json={"kind": "SeldonDeployment", "namespace": NS, "name": NAME, "count": 1},
    )
    assert armed.status_code == 200
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object(G, V, NS, PL, NAME, _ops(90, 10), _content_type=JSON_PATCH)
    assert err.value.status == 409
    seen = httpx.get(f"{kube_fake.url}/_fake/requests", timeout=5).json()
    assert [(r["method"], r["path"]) for r in seen if r["method"] == "PATCH"] == [("PATCH", SDEP_PATH)]
    assert httpx.delete(f"{kube_fake.url}/_fake/requests", timeout=5).status_code == 200
    assert kube_fake.cluster.count("PATCH") == 0
    bad = httpx.post(
        f"{kube_fake.url}/_fake/faults", json={"kind": "Widget", "namespace": "a", "name": "b"}, timeout=5
    )
    assert bad.status_code == 400 and "Widget" in bad.json()["message"]
