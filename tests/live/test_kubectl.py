"""Real ``kubectl`` against the Kubernetes API fake: ``kubectl apply -f`` (the seed's finish
action) works through the fake's discovery and OpenAPI documents, Seldon's admission answers
kubectl as a cluster would, server-side apply is refused as unsupported, and a missing object in
a missing namespace is answered as kube-apiserver answers it.

kubectl is looked up on PATH; outside CI a machine without it skips, in CI it fails (as with
Prometheus): the suite never skips there.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest
import yaml

from simkit.live.kubefake import KubeFake, kubeconfig_text
from tests.live.conftest import seed_documents
from tests.support.prometheus import in_ci


def _promoted() -> str:
    """The seed's SeldonDeployment with all traffic on the candidate (what the finish action applies)."""
    sdep = next(d for d in seed_documents() if d["kind"] == "SeldonDeployment")
    for p, t in zip(sdep["spec"]["predictors"], (0, 100), strict=True):  # type: ignore[index]
        p["traffic"] = t
    return yaml.safe_dump(sdep)


PROMOTE = _promoted()


def kubectl_binary() -> str:
    found = shutil.which("kubectl")
    if found is None:
        if in_ci():
            pytest.fail("kubectl required in CI (Debian: apt-get install kubernetes-client)", pytrace=False)
        pytest.skip("kubectl not on PATH")
    return found


@pytest.fixture
def kubectl(tmp_path: Path) -> Iterator[tuple[KubeFake, list[str]]]:
    binary = kubectl_binary()
    fake = KubeFake()
    fake.cluster.load(seed_documents())
    fake.start()
    config = tmp_path / "kubeconfig"
    config.write_text(kubeconfig_text(fake.url))
    try:
        yield fake, [binary, "--kubeconfig", str(config), "--request-timeout", "20s"]
    finally:
        fake.stop()


def run(cmd: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=60)


def traffic(fake: KubeFake) -> list[object]:
    obj = fake.cluster.object("SeldonDeployment", "ns-production", "iris")
    assert obj is not None
    return [p.get("traffic") for p in obj["spec"]["predictors"]]


def test_kubectl_apply_promotes_through_the_fake(kubectl: tuple[KubeFake, list[str]], tmp_path: Path) -> None:
    fake, cmd = kubectl
    promote = tmp_path / "promote.yaml"
    promote.write_text(PROMOTE)
    out = run(cmd, "apply", "-f", str(promote))
    assert out.returncode == 0, out.stderr
    assert "seldondeployment.machinelearning.seldon.io/iris configured" in out.stdout
    assert traffic(fake) == [0, 100]
    again = run(cmd, "apply", "-f", str(promote))  # the last-applied annotation makes it a no-op
    assert again.returncode == 0 and "unchanged" in again.stdout, again.stdout + again.stderr


def test_kubectl_apply_creates_and_admission_refuses(
    kubectl: tuple[KubeFake, list[str]], tmp_path: Path
) -> None:
    fake, cmd = kubectl
    new = tmp_path / "new.yaml"
    new.write_text(PROMOTE.replace("name: iris\n", "name: iris2\n"))
    out = run(cmd, "apply", "-f", str(new))
    assert out.returncode == 0 and "iris2 created" in out.stdout, out.stderr
    assert fake.cluster.object("SeldonDeployment", "ns-production", "iris2") is not None
    bad = tmp_path / "bad.yaml"
    bad.write_text(PROMOTE.replace("traffic: 100", "traffic: 50"))
    out = run(cmd, "apply", "-f", str(bad))
    assert out.returncode != 0
    # kubectl renders a 422 from its causes, as it renders Seldon's webhook answer
    assert 'The SeldonDeployment "iris" is invalid: spec.predictors: Traffic must sum to 100' in out.stderr, (
        out.stderr
    )
    assert traffic(fake) == [100, 0]


def test_server_side_apply_is_refused_as_unsupported(
    kubectl: tuple[KubeFake, list[str]], tmp_path: Path
) -> None:
    fake, cmd = kubectl
    promote = tmp_path / "promote.yaml"
    promote.write_text(PROMOTE)
    out = run(cmd, "apply", "--server-side", "-f", str(promote))
    assert out.returncode != 0
    assert "does not support patch type 'application/apply-patch+yaml'" in out.stderr, out.stderr
    assert traffic(fake) == [100, 0]


def test_an_object_in_a_missing_namespace_is_not_found(kubectl: tuple[KubeFake, list[str]]) -> None:
    """The API answers that the object is not found (as kube-apiserver does); kubectl itself then
    looks the namespace up and reports it, as it does against a real cluster."""
    fake, cmd = kubectl
    cfg = kubernetes.client.Configuration(host=fake.url)
    with kubernetes.client.ApiClient(cfg) as api, pytest.raises(kubernetes.client.ApiException) as err:
        kubernetes.client.CustomObjectsApi(api).get_namespaced_custom_object(
            "machinelearning.seldon.io", "v1", "nope", "seldondeployments", "iris"
        )
    assert err.value.status == 404
    assert 'seldondeployments.machinelearning.seldon.io \\"iris\\" not found' in str(err.value.body)
    out = run(cmd, "get", "sdep", "iris", "-n", "nope")
    assert out.returncode != 0 and "NotFound" in out.stderr, out.stderr
