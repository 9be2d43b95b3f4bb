"""The Iter8 ``Experiment`` resource (``iter8.tools/v2alpha2``, etc3 v0.1.27), typed and checked.

``spec`` is strict, like the CRD's structural schema: an unknown field is an error, enums are
the CRD's (``testingPattern`` Canary | A/B | A/B/N | Conformance: the docs' "A/B/n" is rejected;
``deploymentPattern`` FixedSplit | Progressive | BlueGreen), durations are ≥ 1 and weight limits
0..100. ``status`` is parsed leniently (:mod:`simkit.spec.experiment_status`).

On top of the schema, :func:`parse_experiment` applies the checks etc3 makes when the experiment
reaches Running (iter8-v2.md §2.3 step 10, §2.11) — etc3 would fail the experiment with
InvalidExperiment; simkit reports them at load time, naming the field:

* ``versionInfo`` is present; candidates: Conformance 0, Canary and A/B 1, A/B/N ≥ 1;
* version names are unique;
* rewards: none for Conformance and Canary; exactly one for A/B and A/B/N;
* a non-empty ``weightObjRef.fieldPath`` starts with ``.``, and (simkit's addition) converts to a
  valid JSON pointer with etc3's textual rule (:func:`field_path_to_pointer`): ``.name``
  segments, each optionally followed by one ``[index]``, never ending in an index;
* metric references (criteria) have the form ``name`` or ``namespace/name``.

Defaults (§2.2) are *not* applied at parse time, because Iter8's analytics applies weight
constraints only when ``spec.strategy.weights`` was actually sent: :func:`with_defaults` fills
them the way etc3 does in memory, and :func:`weights_given` remembers whether the user wrote
``weights``. Action names are free-form in the CRD (``map[string]Action``); etc3 runs only
``start``, ``loop`` and ``finish`` (rollback also runs ``finish``): :func:`unused_actions` lists
the others so that callers can warn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from simkit.errors import Location
from simkit.ports import ObjectRef, WeightRef
from simkit.spec.documents import Document, validate
from simkit.spec.experiment_models import (
    DEFAULT_NAMESPACE,
    DEPLOYMENT_PATTERNS,
    FIELD_PATH_SYNTAX,
    TESTING_PATTERNS,
    Criteria,
    Duration,
    Experiment,
    ExperimentMeta,
    ExperimentSpec,
    NamedValue,
    ObjectiveSpec,
    RewardSpec,
    Strategy,
    TaskSpec,
    VersionDetail,
    VersionInfo,
    WeightObjRef,
    Weights,
)
from simkit.spec.experiment_status import ExperimentStatus

__all__ = [
    "API_VERSION",
    "DEFAULT_NAMESPACE",
    "DEPLOYMENT_PATTERNS",
    "KIND",
    "TESTING_PATTERNS",
    "Criteria",
    "Duration",
    "Experiment",
    "ExperimentMeta",
    "ExperimentSpec",
    "ExperimentStatus",
    "NamedValue",
    "ObjectiveSpec",
    "RewardSpec",
    "Strategy",
    "TaskSpec",
    "VersionDetail",
    "VersionInfo",
    "WeightObjRef",
    "Weights",
    "field_path_to_pointer",
    "load_experiment",
    "metric_references",
    "parse_experiment",
    "unused_actions",
    "version_names",
    "version_variables",
    "versions",
    "weight_refs",
    "weights_given",
    "with_defaults",
]

API_VERSION = "iter8.tools/v2alpha2"
KIND = "Experiment"
ACTIONS_RUN_BY_ETC3 = ("start", "loop", "finish")

# etc3 defaults (api/v2alpha2/defaults.go), applied in memory on every reconcile.
DEFAULT_INTERVAL_SECONDS = 20
DEFAULT_ITERATIONS_PER_LOOP = 15
DEFAULT_MAX_LOOPS = 1
DEFAULT_DEPLOYMENT_PATTERN: Literal["Progressive"] = "Progressive"
DEFAULT_MAX_CANDIDATE_WEIGHT = 100
DEFAULT_MAX_CANDIDATE_WEIGHT_INCREMENT = 10


# ---------------------------------------------------------------------------- loading and checks


def parse_experiment(raw: Mapping[str, Any], where: Location, *, etc3_checks: bool = True) -> Experiment:
    """Validate one Experiment given as a plain mapping; errors are one SpecError line.

    ``etc3_checks=False`` keeps only what iter8-analytics itself needs (the schema, a
    ``versionInfo``, a candidate for Canary, unique version names): ``simkit analyze`` answers
    whatever the service answers, e.g. an A/B experiment without a reward gets winnerFound false
    and the service's "No reward metric" message instead of etc3's InvalidExperiment."""
    exp = validate(Experiment, dict(raw), where)
    exp._where = where
    exp._weights_given = exp.spec.strategy.weights is not None
    if etc3_checks:
        _check_version_info(exp)
    else:
        _check_analytics_input(exp)
    return exp


def _check_analytics_input(exp: Experiment) -> None:
    info = exp.spec.version_info
    if info is None:
        raise exp.error(
            "spec.versionInfo", "required: iter8-analytics cannot analyse an experiment without versions"
        )
    if exp.spec.strategy.testing_pattern == "Canary" and not info.candidates:
        raise exp.error(
            "spec.versionInfo.candidates",
            "a Canary experiment needs a candidate (iter8-analytics answers HTTP 500 without one)",
        )
    seen: set[str] = set()
    for field, version in _versions_with_fields(exp):
        if version.name in seen:  # a deliberate difference: the service would silently merge them
            raise exp.error(f"{field}.name", f"duplicate version name {version.name!r}")
        seen.add(version.name)


def load_experiment(doc: Document, *, etc3_checks: bool = True) -> Experiment:
    """Type a parsed YAML document that should be an Iter8 v2alpha2 Experiment."""
    if doc.kind != KIND:
        raise doc.error("kind", f"expected {KIND}, found {doc.kind or 'nothing'}")
    if doc.api_version != API_VERSION:
        raise doc.error("apiVersion", f"expected {API_VERSION}, found {doc.api_version or 'nothing'}")
    return parse_experiment(doc.raw, doc.where, etc3_checks=etc3_checks)


def _check_version_info(exp: Experiment) -> None:
    spec = exp.spec
    info = spec.version_info
    pattern = spec.strategy.testing_pattern
    if info is None:
        raise exp.error(
            "spec.versionInfo", "required: etc3 fails an experiment without versionInfo (InvalidExperiment)"
        )
    count = len(info.candidates)
    expected = {"Conformance": "no candidates", "Canary": "exactly 1 candidate", "A/B": "exactly 1 candidate"}
    ok = (
        count == 0 if pattern == "Conformance" else count == 1 if pattern in ("Canary", "A/B") else count >= 1
    )
    if not ok:
        want = expected.get(pattern, "at least 1 candidate")
        raise exp.error("spec.versionInfo.candidates", f"a {pattern} experiment needs {want}, found {count}")
    seen: set[str] = set()
    for field, version in _versions_with_fields(exp):
        if version.name in seen:
            raise exp.error(f"{field}.name", f"duplicate version name {version.name!r}")
        seen.add(version.name)
        ref = version.weight_obj_ref
        if ref is not None and ref.field_path:
            try:
                field_path_to_pointer(ref.field_path)
            except ValueError as exc:
                raise exp.error(f"{field}.weightObjRef.fieldPath", str(exc)) from None
    rewards = spec.criteria.rewards if spec.criteria else ()
    if pattern in ("Conformance", "Canary") and rewards:
        raise exp.error(
            "spec.criteria.rewards", f"a {pattern} experiment takes no reward, found {len(rewards)}"
        )
    if pattern in ("A/B", "A/B/N") and len(rewards) != 1:
        raise exp.error(
            "spec.criteria.rewards", f"an {pattern} experiment needs exactly 1 reward, found {len(rewards)}"
        )


def _versions_with_fields(exp: Experiment) -> list[tuple[str, VersionDetail]]:
    info = exp.spec.version_info
    if info is None:
        return []
    out = [("spec.versionInfo.baseline", info.baseline)]
    out += [(f"spec.versionInfo.candidates[{i}]", c) for i, c in enumerate(info.candidates)]
    return out


def field_path_to_pointer(field_path: str) -> str:
    """etc3's fieldPath → JSON-patch path: ``[``→``/``, then ``].``→``/``, then ``.``→``/``.

    ``.spec.predictors[1].traffic`` → ``/spec/predictors/1/traffic``. Raises ValueError for a path
    whose conversion would not be a well-formed pointer (etc3 would send it and only log the error).
    """
    if not field_path.startswith("."):
        raise ValueError(f"fieldPath {field_path!r} must start with '.' (etc3 rejects it: InvalidExperiment)")
    if not FIELD_PATH_SYNTAX.match(field_path):
        raise ValueError(
            f"fieldPath {field_path!r} cannot be converted to a JSON patch path: use '.name' segments, "
            "each optionally followed by one '[index]', ending in a name (e.g. .spec.predictors[1].traffic)"
        )
    return field_path.replace("[", "/").replace("].", "/").replace(".", "/")


def metric_references(exp: Experiment) -> list[tuple[str, str]]:
    """Every metric reference in ``spec.criteria`` as (field, reference), in etc3's reading order."""
    crit = exp.spec.criteria
    if crit is None:
        return []
    refs: list[tuple[str, str]] = []
    if crit.request_count is not None:
        refs.append(("spec.criteria.requestCount", crit.request_count))
    refs += [(f"spec.criteria.rewards[{i}].metric", r.metric) for i, r in enumerate(crit.rewards)]
    refs += [(f"spec.criteria.indicators[{i}]", m) for i, m in enumerate(crit.indicators)]
    refs += [(f"spec.criteria.objectives[{i}].metric", o.metric) for i, o in enumerate(crit.objectives)]
    return refs


def unused_actions(exp: Experiment) -> list[str]:
    """Action names the CRD accepts but etc3 v0.1.27 never runs."""
    return [name for name in exp.spec.strategy.actions if name not in ACTIONS_RUN_BY_ETC3]


# ---------------------------------------------------------------------------- defaults and views


def weights_given(exp: Experiment) -> bool:
    """Whether ``spec.strategy.weights`` was written by the user (survives :func:`with_defaults`)."""
    return exp._weights_given


def with_defaults(exp: Experiment) -> Experiment:
    """The experiment with etc3's in-memory defaults filled in (iter8-v2.md §2.2)."""
    spec = exp.spec
    strategy = spec.strategy
    pattern = strategy.deployment_pattern or DEFAULT_DEPLOYMENT_PATTERN
    w = strategy.weights or Weights()
    weights = w.model_copy(
        update={
            "max_candidate_weight": w.max_candidate_weight
            if w.max_candidate_weight is not None
            else DEFAULT_MAX_CANDIDATE_WEIGHT,
            "max_candidate_weight_increment": w.max_candidate_weight_increment
            if w.max_candidate_weight_increment is not None
            else DEFAULT_MAX_CANDIDATE_WEIGHT_INCREMENT,
        }
    )
    d = spec.duration or Duration()
    duration = d.model_copy(
        update={
            "interval_seconds": d.interval_seconds or DEFAULT_INTERVAL_SECONDS,
            "iterations_per_loop": d.iterations_per_loop or DEFAULT_ITERATIONS_PER_LOOP,
            "max_loops": d.max_loops or DEFAULT_MAX_LOOPS,
        }
    )
    criteria = spec.criteria
    if criteria is not None:
        rollback = pattern == "BlueGreen"
        objectives = tuple(
            o if o.rollback_on_failure is not None else o.model_copy(update={"rollback_on_failure": rollback})
            for o in criteria.objectives
        )
        criteria = criteria.model_copy(update={"objectives": objectives})
    new_spec = spec.model_copy(
        update={
            "strategy": strategy.model_copy(update={"deployment_pattern": pattern, "weights": weights}),
            "duration": duration,
            "criteria": criteria,
        }
    )
    out = exp.model_copy(update={"spec": new_spec})
    out._where = exp._where
    out._weights_given = exp._weights_given
    return out


def versions(exp: Experiment) -> list[VersionDetail]:
    """Baseline first, then candidates (Iter8's order everywhere)."""
    return [v for _, v in _versions_with_fields(exp)]


def version_names(exp: Experiment) -> list[str]:
    return [v.name for v in versions(exp)]


def version_variables(exp: Experiment, name: str) -> dict[str, str]:
    """``name`` plus the version's variables: the handler's template data and the metric args.

    Raises KeyError for an unknown version (the handler's ``common/exec`` task then errors).
    """
    for version in versions(exp):
        if version.name == name:
            out = {"name": version.name}
            out.update({v.name: v.value for v in version.variables})
            return out
    raise KeyError(f"no version named {name!r} in spec.versionInfo")


def weight_refs(exp: Experiment) -> list[WeightRef]:
    """Where each version's weight lives, for versions whose weightObjRef has a fieldPath."""
    refs: list[WeightRef] = []
    for version in versions(exp):
        ref = version.weight_obj_ref
        if ref is None or not ref.field_path:
            continue
        obj = ObjectRef(ref.api_version, ref.kind, ref.namespace or exp.namespace, ref.name)
        refs.append(WeightRef(version.name, obj, ref.field_path, field_path_to_pointer(ref.field_path)))
    return refs
