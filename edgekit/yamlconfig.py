"""Untrusted YAML configuration files (recipes, device inventories): parsed safely, errors in one line.

PyYAML's safe loader only; then refused if nested deeper than MAX_DEPTH (20) levels, larger than
MAX_VALUES (10,000) values once anchors/aliases are expanded (billion laughs), or holding NaN/Inf.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import yaml
from pydantic import ValidationError

from edgekit.errors import EdgekitError, condense

MAX_DEPTH = 20
MAX_VALUES = 10_000


def load_mapping(text: str, origin: str, error: type[EdgekitError]) -> Optional[dict]:
    """The YAML document as a dict (None for an empty document); `error` names `origin`."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise error(f"not valid YAML{where}", origin) from None
    except (ValueError, TypeError, OverflowError) as err:  # e.g. a timestamp like 2024-13-45
        raise error(f"not valid YAML ({condense(' '.join(str(err).split()), 120)})", origin) from None
    except RecursionError:
        raise error("nested too deeply", origin) from None
    if data is not None and not isinstance(data, dict):
        raise error("must be a mapping of keys to values", origin)
    if data is not None:
        _check_shape(data, origin, error)
    return data


def _show(key: Any) -> str:
    """A key for a one-line message: control characters escaped, at most 60 characters."""
    text = str(key)
    text = text if text.isprintable() else text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= 60 else text[:57] + "..."


def _check_shape(data: Any, origin: str, error: type[EdgekitError]) -> None:
    """Refuse deep nesting, alias-expanded size over MAX_VALUES and NaN/Inf, without recursion."""
    stack: list[tuple[Any, tuple, int]] = [(data, (), 0)]
    seen = 0
    while stack:
        value, where, level = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise error(f"more than {MAX_VALUES} values (after expanding YAML aliases)", origin)
        if level > MAX_DEPTH:
            raise error(f"nested deeper than {MAX_DEPTH} levels", origin)
        if isinstance(value, float) and not math.isfinite(value):
            raise error(f"{'.'.join(map(_show, where)) or '(top level)'}: {value} is not a finite number",
                              origin)
        if isinstance(value, dict):
            stack.extend((v, (*where, k), level + 1) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, (*where, i), level + 1) for i, v in enumerate(value))


def validation_message(err: ValidationError) -> str:
    """The first schema error as 'key.path: what is wrong' ('unknown key ...' for a misspelling)."""
    first = err.errors()[0]
    loc = [p for p in first["loc"] if not str(p).startswith("function-")]  # validator wrappers
    where = ".".join(_show(p) for p in loc) if loc else "(top level)"
    if first["type"] == "extra_forbidden":
        return f"unknown key '{where}'"
    if first["type"] == "invalid_key":
        return f"key '{where}' must be a string"
    message = condense(" ".join(first["msg"].removeprefix("Value error, ").split()), 200)
    return f"{where}: {message}"
