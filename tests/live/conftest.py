"""Fixtures for live-mode tests: the Kubernetes API fake over real HTTP, with the seed's objects.

The fake runs in a background thread of the test process on an ephemeral 127.0.0.1 port and is
stopped at the end of each test; the official ``kubernetes`` client talks to it over HTTP. These
tests need nothing outside the Python environment, so they never skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest
import yaml

from simkit.live.kubefake import KubeFake

# shared/seed/000_579c29013e946cb4.txt: `cat abtest.yaml`, byte for byte (its trailing spaces after
# `traffic: 100` are put back by the .replace below, so the linter's whitespace rule stays on)
SEED_ABTEST_YAML = """\
apiVersion: v1
kind: Namespace
metadata:
    name: ns-production
---
apiVersion: machinelearning.seldon.io/v1
kind: SeldonDeployment
metadata:
  name: iris
  namespace: ns-production
spec:
  predictors:
  - name: baseline
    traffic: 100
    graph:
      name: classifier
      modelUri: gs://seldon-models/v1.19.0-dev/sklearn/iris
      implementation: SKLEARN_SERVER
  - name: candidate
    traffic: 0
    graph:
      name: classifier
      modelUri: gs://seldon-models/xgboost/iris
      implementation: XGBOOST_SERVER
""".replace("traffic: 100\n", "traffic: 100    \n")

# seldon-core examples/iter8/progressive_rollout/separate_sdeps/routing-rule.yaml (seldon-v1.md §4)
ROUTING_RULE_YAML = """\
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: routing-rule
  namespace: default
spec:
  gateways:
  - istio-system/seldon-gateway
  hosts:
  - iris.example.com
  http:
  - route:
    - destination:
        host: iris-default.ns-baseline.svc.cluster.local
        port:
          number: 8000
      headers:
        response:
          set:
            version: iris-v1
      weight: 100
    - destination:
        host: iris-default.ns-candidate.svc.cluster.local
        port:
          number: 8000
      headers:
        response:
          set:
            version: iris-v2
      weight: 0
"""


def seed_documents() -> list[dict[str, object]]:
    return [d for d in yaml.safe_load_all(SEED_ABTEST_YAML + "---\n" + ROUTING_RULE_YAML) if d]


@pytest.fixture
def seed_manifest_file(tmp_path: Path) -> Path:
    path = tmp_path / "seed-manifests.yaml"
    path.write_text(SEED_ABTEST_YAML + "---\n" + ROUTING_RULE_YAML)
    return path


@pytest.fixture
def kube_fake() -> Iterator[KubeFake]:
    """A started fake holding the seed's Namespace + SeldonDeployment and the VirtualService."""
    fake = KubeFake()
    fake.cluster.load(seed_documents())
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def api_client(kube_fake: KubeFake) -> Iterator[kubernetes.client.ApiClient]:
    cfg = kubernetes.client.Configuration(host=kube_fake.url)
    cfg.retries = 0  # a refused connection must fail at once, not after urllib3's retries
    with kubernetes.client.ApiClient(cfg) as api:
        yield api


@pytest.fixture
def custom(api_client: kubernetes.client.ApiClient) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(api_client)
