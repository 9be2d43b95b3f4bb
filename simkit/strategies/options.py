"""The command line's strategy options, one parser for ``run``, ``bench``, ``live`` and ``replay``.

``--strategy NAME[:key=value,...]`` names a strategy and, optionally, some of its parameters;
values are read as YAML scalars (``10``, ``0.5``, ``true``, ``ns/metric``), so a list or a
mapping cannot be written inline. ``--strategy-params FILE`` is a YAML file mapping strategy names
to parameter mappings, the shape of ``scenarios/suite/strategies.yaml``::

    flagger: {stepWeight: 10, maxWeight: 50, threshold: 2}
    sequential: {metrics: {requests: ns/request-count, errors: ns/error-count}}

For each selected strategy the file's parameters come first and the inline ``key=value`` pairs
override them. A strategy given with neither keeps the scenario's ``spec.strategy.params`` when
the scenario names the same strategy (``params`` is then ``None``). Bad parameters are reported
at the option or file they came from (see :func:`simkit.strategies.base.create`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from simkit.errors import Location, SpecError

STRATEGY_OPTION = "--strategy"
PARAMS_OPTION = "--strategy-params"


@dataclass(frozen=True)
class StrategyOption:
    """One ``--strategy`` value, merged with the params file."""

    name: str
    params: dict[str, Any] | None  # None: nothing given here, the scenario's params may apply
    label: str  # as typed: names the strategy's column or folder in a replay
    where: Location  # where a bad parameter is reported

    @property
    def field_prefix(self) -> str:
        """Field names of bad parameters: ``stepWeight`` on the command line, ``flagger.stepWeight``
        in a params file."""
        return "" if self.where.file.startswith(STRATEGY_OPTION) else f"{self.name}."


def parse_inline(text: str, option: str = STRATEGY_OPTION) -> tuple[str, dict[str, Any]]:
    """``NAME`` or ``NAME:key=value,key=value`` → (name, params)."""
    import yaml

    name, _, rest = text.partition(":")
    name = name.strip()
    if not name:
        raise SpecError.from_cli(option, f"{text!r}: expected NAME or NAME:key=value,key=value")
    params: dict[str, Any] = {}
    for item in filter(None, (x.strip() for x in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise SpecError.from_cli(option, f"{text!r}: expected NAME:key=value,key=value (got {item!r})")
        try:
            params[key.strip()] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            raise SpecError.from_cli(option, f"{text!r}: cannot read the value of {key.strip()!r}") from None
    return name, params


def read_params_file(path: str) -> dict[str, dict[str, Any]]:
    """Strategy name → parameters, from a ``--strategy-params`` (or ``strategies.yaml``) file."""
    import yaml

    where = Location(path)
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except OSError as exc:
        raise SpecError(
            where, None, f"cannot read the strategy parameters file: {exc.strerror or exc}"
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError(where, None, f"malformed YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SpecError(where, None, "must map each strategy name to a mapping of its parameters")
    for name, params in data.items():
        if not isinstance(params, dict) and params is not None:
            raise SpecError(where, str(name), "must be a mapping of the strategy's parameters")
    return {str(k): dict(v or {}) for k, v in data.items()}


def strategy_options(
    texts: Sequence[str] | None, params_file: str | None = None, default: str | None = None
) -> list[StrategyOption]:
    """Every ``--strategy`` value (or ``default`` when there is none; nothing if that is None too),
    with the params file merged in."""
    from_file = read_params_file(params_file) if params_file else {}
    chosen = list(dict.fromkeys(texts or ([default] if default else [])))
    out: list[StrategyOption] = []
    for text in chosen:
        name, inline = parse_inline(text)
        params: dict[str, Any] | None = None
        where = Location(f"{STRATEGY_OPTION} {text}")
        if name in from_file:
            params = dict(from_file[name])
            if not inline:
                where = Location(str(params_file))
        if inline:
            params = {**(params or {}), **inline}
        out.append(StrategyOption(name, params, text, where))
    return out


def single_strategy(
    texts: Sequence[str] | None, params_file: str | None, default: str | None
) -> StrategyOption | None:
    """The one strategy of ``run`` or ``live``; ``None`` when neither the option nor ``default`` names one
    (the file's parameters then apply to whichever strategy the scenario names: see :func:`for_name`)."""
    options = strategy_options(texts, params_file, default)
    if len(options) > 1:
        raise SpecError.from_cli(STRATEGY_OPTION, "give one strategy here (replay compares several)")
    return options[0] if options else None


def for_name(name: str, params_file: str | None) -> StrategyOption | None:
    """The params file's entry for ``name`` (the scenario's own strategy), or None."""
    if not params_file:
        return None
    from_file = read_params_file(params_file)
    if name not in from_file:
        return None
    return StrategyOption(name, from_file[name], name, Location(params_file))
