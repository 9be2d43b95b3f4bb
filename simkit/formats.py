"""``-o json|yaml``: one renderer for the machine-readable output of every reporting command.

The shapes are part of the command line's interface (README, "Machine-readable output"): keys
are only ever added, never renamed or removed. JSON is indented and ends with a newline; YAML
keeps the keys in the order the command built them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any


def _plain(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null, tuples lists, numpy scalars Python numbers."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, str | bytes):
        value = value.item()  # numpy / pandas scalars
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def render(data: Any, fmt: str) -> str:
    """``data`` as ``json`` or ``yaml`` text."""
    plain = _plain(data)
    if fmt == "json":
        return json.dumps(plain, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        import yaml

        return str(yaml.safe_dump(plain, sort_keys=False, allow_unicode=True, default_flow_style=False))
    raise ValueError(f"unknown output format {fmt!r}")
