"""Loading a scenario: the Scenario document plus the manifests it names, cross-checked.

A scenario is a folder holding ``scenario.yaml`` (which lists manifest files relative to the
folder) or one multi-document file holding the Scenario document and the manifests inline
(it may list more files too). The result, :class:`Bundle`, keeps every manifest document with
its location, so errors found later (an unknown metric, a bad fieldPath) still name file,
document and field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simkit.errors import Location, SpecError
from simkit.spec.documents import Document, load_yaml_documents, validate
from simkit.spec.scenario import Behaviour, Load, ScenarioDoc
from simkit.spec.seldon import (
    ISTIO_GROUP,
    SELDON_GROUP,
    SeldonDeployment,
    VirtualService,
    parse_host,
    parse_seldon_deployment,
    parse_virtual_service,
)

SCENARIO_FILE = "scenario.yaml"


@dataclass(frozen=True)
class Bundle:
    """A loaded, validated scenario."""

    path: Path  # the folder, or the single file
    base_dir: Path  # where relative paths (manifests, traces) are resolved
    scenario: ScenarioDoc
    scenario_doc: Document
    documents: tuple[Document, ...]  # every manifest document, in file order
    seldon: dict[tuple[str, str], tuple[SeldonDeployment, Document]] = field(default_factory=dict)
    virtual_services: dict[tuple[str, str], tuple[VirtualService, Document]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.scenario.metadata.name

    def of_kind(self, kind: str) -> list[Document]:
        return [d for d in self.documents if d.kind == kind]

    def predictor_keys(self) -> list[str]:
        """``ns/deployment/predictor`` for every predictor of every SeldonDeployment."""
        return [
            f"{ns}/{name}/{p.name}"
            for (ns, name), (sdep, _) in self.seldon.items()
            for p in sdep.spec.predictors
        ]

    def behaviour(self, key: str) -> Behaviour:
        return self.scenario.spec.predictors.get(key) or Behaviour()

    def experiment_document(self) -> Document:
        """The Experiment the scenario runs (``spec.experiment`` or the only one)."""
        exps = self.of_kind("Experiment")
        wanted = self.scenario.spec.experiment
        where = self.scenario_doc.where
        if wanted is not None:
            for d in exps:
                if d.name == wanted:
                    return d
            known = ", ".join(d.name for d in exps) or "none"
            raise SpecError(
                where, "spec.experiment", f"no Experiment named {wanted!r} in the manifests (found: {known})"
            )
        if len(exps) != 1:
            raise SpecError(
                where, "spec.experiment", f"name the Experiment to run ({len(exps)} found in the manifests)"
            )
        return exps[0]


def load_scenario(path: str | Path) -> Bundle:
    """Load a scenario folder or file and check that every reference in it resolves."""
    p = Path(path)
    if p.is_dir():
        file = p / SCENARIO_FILE
        if not file.exists():
            raise SpecError(Location(str(p)), None, f"not a scenario folder: {SCENARIO_FILE} is missing")
        base = p
    elif p.exists():
        file, base = p, p.parent
    else:
        raise SpecError(Location(str(p)), None, "scenario not found")
    docs = load_yaml_documents(file)
    scenario_docs = [d for d in docs if d.kind == "Scenario"]
    if len(scenario_docs) != 1:
        raise SpecError(
            Location(str(file)), None, f"expected exactly one Scenario document, found {len(scenario_docs)}"
        )
    sdoc = scenario_docs[0]
    scenario = validate(ScenarioDoc, sdoc.raw, sdoc.where)
    manifests = [d for d in docs if d is not sdoc]
    for i, rel in enumerate(scenario.spec.manifests):
        mpath = base / rel
        if not mpath.is_file():
            raise SpecError(
                sdoc.where, f"spec.manifests[{i}]", f"manifest file {rel!r} not found (looked in {base})"
            )
        manifests.extend(load_yaml_documents(mpath))
    bundle = Bundle(p, base, scenario, sdoc, tuple(manifests))
    _index_routing(bundle)
    _check_references(bundle)
    return bundle


def _index_routing(bundle: Bundle) -> None:
    for doc in bundle.documents:
        if doc.kind == "SeldonDeployment" or doc.api_version.startswith(SELDON_GROUP + "/"):
            if doc.kind != "SeldonDeployment":  # the group has no other kind: a typo, blamed on its file
                raise doc.error(
                    "kind",
                    f"unknown kind {doc.kind!r} for apiVersion {doc.api_version}: "
                    f"{SELDON_GROUP} has only SeldonDeployment",
                )
            sdep = parse_seldon_deployment(doc)
            key = (sdep.metadata.namespace or "default", sdep.metadata.name)
            if key in bundle.seldon:
                raise doc.error("metadata.name", f"SeldonDeployment {key[0]}/{key[1]} is defined twice")
            bundle.seldon[key] = (sdep, doc)
        elif doc.kind == "VirtualService" and doc.api_version.startswith(ISTIO_GROUP + "/"):
            vs = parse_virtual_service(doc)
            bundle.virtual_services[(vs.metadata.namespace or "default", vs.metadata.name)] = (vs, doc)


def _check_references(bundle: Bundle) -> None:
    spec = bundle.scenario.spec
    where = bundle.scenario_doc.where
    keys = set(bundle.predictor_keys())
    for key in spec.predictors:
        if key not in keys:
            raise SpecError(
                where,
                f"spec.predictors[{key!r}]",
                f"no such predictor (known: {', '.join(sorted(keys)) or 'none'})",
            )
    names = [ld.name for ld in spec.load]
    for i, ld in enumerate(spec.load):
        if names.count(ld.name) > 1:
            raise SpecError(where, f"spec.load[{i}].name", f"duplicate load name {ld.name!r}")
        problem = _target_problem(bundle, ld.to)
        if problem:
            raise SpecError(where, f"spec.load[{i}].to", problem)
        if ld.file and not (bundle.base_dir / ld.file).is_file():
            raise SpecError(where, f"spec.load[{i}].file", f"trace file {ld.file!r} not found")
    loads = {ld.name: ld for ld in spec.load}
    for i, ev in enumerate(spec.events):
        if ev.predictor is not None:
            if ev.predictor not in keys:
                raise SpecError(where, f"spec.events[{i}].predictor", f"no such predictor {ev.predictor!r}")
            merged: dict[str, Any] = {
                **bundle.behaviour(ev.predictor).model_dump(exclude_none=True),
                **ev.set,
            }
            validate(Behaviour, merged, where, prefix=f"spec.events[{i}].set")
        else:
            base_load = loads.get(ev.load or "")
            if base_load is None:
                raise SpecError(where, f"spec.events[{i}].load", f"no such load generator {ev.load!r}")
            bad = set(ev.set) - {"qps", "pattern", "qpsEnd", "amplitude", "period", "phase", "arrivals"}
            if bad:
                raise SpecError(
                    where,
                    f"spec.events[{i}].set.{sorted(bad)[0]}",
                    "unknown field (a load event may set qps, pattern, qpsEnd, amplitude, period, phase, arrivals)",
                )
            validate(
                Load,
                {**base_load.model_dump(exclude_none=True), **ev.set},
                where,
                prefix=f"spec.events[{i}].set",
            )


def _target_problem(bundle: Bundle, to: str) -> str | None:
    kind, _, target = to.partition(":")
    parts = target.split("/")
    if kind == "virtualservice":
        if len(parts) != 2 or (parts[0], parts[1]) not in bundle.virtual_services:
            return f"no VirtualService {target!r} in the manifests"
        vs, _ = bundle.virtual_services[(parts[0], parts[1])]
        for r in vs.spec.http[0].route:
            ns, svc = parse_host(r.destination.host, parts[0])
            if resolve_service(bundle, ns, svc) is None:
                return f"VirtualService {target} routes to {r.destination.host}, which is no predictor of a SeldonDeployment in the manifests"
        return None
    if len(parts) < 2 or (parts[0], parts[1]) not in bundle.seldon:
        return f"no SeldonDeployment {'/'.join(parts[:2])!r} in the manifests"
    if kind in ("predictor", "feedback") and len(parts) == 3:
        if f"{parts[0]}/{parts[1]}/{parts[2]}" not in bundle.predictor_keys():
            return f"SeldonDeployment {parts[0]}/{parts[1]} has no predictor {parts[2]!r}"
        return None
    if kind == "predictor" or len(parts) != 2:
        return "expected NS/SDEP" + ("/PREDICTOR" if kind == "predictor" else "")
    return None


def resolve_service(bundle: Bundle, namespace: str, service: str) -> str | None:
    """Map a predictor Service (``<sdep>-<predictor>`` in a namespace) to ``ns/sdep/predictor``."""
    for (ns, name), (sdep, _) in bundle.seldon.items():
        if ns != namespace:
            continue
        for p in sdep.spec.predictors:
            if f"{name}-{p.name}" == service:
                return f"{ns}/{name}/{p.name}"
    return None
