"""Multi-document YAML loading that remembers where every document came from.

Every later validation error must name file, document and field, so each parsed document keeps
its :class:`~simkit.errors.Location`. Typed models are pydantic v2 models (the one choice for all
specs); :func:`validate` turns a pydantic ValidationError into one :class:`SpecError` line.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml

from simkit.errors import Location, SpecError

M = TypeVar("M", bound=pydantic.BaseModel)


@dataclass(frozen=True)
class Document:
    """One YAML document of a file, as a plain dict, with its location."""

    raw: dict[str, Any]
    where: Location

    @property
    def kind(self) -> str:
        return str(self.raw.get("kind", ""))

    @property
    def api_version(self) -> str:
        return str(self.raw.get("apiVersion", ""))

    @property
    def name(self) -> str:
        return str((self.raw.get("metadata") or {}).get("name", ""))

    @property
    def namespace(self) -> str | None:
        ns = (self.raw.get("metadata") or {}).get("namespace")
        return str(ns) if ns is not None else None

    def error(self, field: str | None, message: str) -> SpecError:
        return SpecError(self.where, field, message)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys (a silent-override trap in hand-written YAML)."""


def _construct_mapping(
    loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml_documents(text: str, file: str) -> list[Document]:
    """Parse every non-empty document of a YAML (or JSON) text."""
    docs: list[Document] = []
    try:
        for index, data in enumerate(yaml.load_all(text, Loader=_UniqueKeyLoader)):
            if data is None:
                continue
            if not isinstance(data, dict):
                raise SpecError(
                    Location(file, index), None, f"expected a mapping, found {type(data).__name__}"
                )
            meta: dict[str, Any] = data["metadata"] if isinstance(data.get("metadata"), dict) else {}
            where = Location(
                file, index, str(data.get("kind") or "") or None, str(meta.get("name") or "") or None
            )
            docs.append(Document(data, where))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        pos = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(Location(file), None, f"malformed YAML{pos}: {problem}") from None
    return docs


def load_yaml_documents(path: str | Path) -> list[Document]:
    """Read and parse a YAML file; a missing or unreadable file is a SpecError."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(Location(str(path)), None, "file not found") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise SpecError(Location(str(path)), None, f"cannot read: {exc}") from None
    return parse_yaml_documents(text, str(path))


def _field_path(loc: tuple[int | str, ...], prefix: str) -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def validate(model: type[M], data: Any, where: Location, prefix: str = "") -> M:
    """Validate ``data`` against ``model``; the first problem becomes one SpecError line."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        field = _field_path(loc, prefix)
        kind = err["type"]
        if kind == "extra_forbidden":
            message = "unknown field"
        elif kind == "missing":
            message = "required field is missing"
        else:
            message = str(err["msg"])
            if message.startswith("Value error, "):
                message = message[len("Value error, ") :]
        raise SpecError(where, field or None, message) from None


def walk(mapping: Mapping[str, Any], path: str) -> Iterator[Any]:
    """Yield the value at a dotted path when it exists (helper for optional lookups)."""
    cur: Any = mapping
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return
        cur = cur[part]
    yield cur
