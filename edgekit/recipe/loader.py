"""Load recipes: a YAML file or a preset name; merge CLI overrides; errors name file and key.

Recipe files are untrusted: at most 1 MiB, UTF-8, parsed with PyYAML's safe loader, then refused
if empty, nested deeper than 20 levels, larger than 10,000 values once anchors/aliases are
expanded (billion laughs), or holding NaN/Inf numbers; schema errors name the key path.
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

import edgekit
from edgekit.errors import RecipeError
from edgekit.recipe.schema import Recipe

MAX_RECIPE_BYTES = 1 << 20
MAX_DEPTH = 20
MAX_VALUES = 10_000


def preset_dir() -> Path:
    """The preset recipes: the repository's recipes/ directory (EDGEKIT_RECIPES overrides)."""
    override = os.environ.get("EDGEKIT_RECIPES")
    if override:
        return Path(override)
    return Path(edgekit.__file__).resolve().parent.parent / "recipes"


def preset_names() -> list[str]:
    folder = preset_dir()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def _show(key: Any) -> str:
    """A key for a one-line message: control characters escaped, at most 60 characters."""
    text = str(key)
    text = text if text.isprintable() else text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= 60 else text[:57] + "..."


def _check_shape(data: Any, origin: str) -> None:
    """Refuse deep nesting, alias-expanded size over MAX_VALUES and NaN/Inf, without recursion."""
    stack: list[tuple[Any, tuple, int]] = [(data, (), 0)]
    seen = 0
    while stack:
        value, where, level = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise RecipeError(f"more than {MAX_VALUES} values (after expanding YAML aliases)", origin)
        if level > MAX_DEPTH:
            raise RecipeError(f"nested deeper than {MAX_DEPTH} levels", origin)
        if isinstance(value, float) and not math.isfinite(value):
            raise RecipeError(f"{'.'.join(map(_show, where)) or '(top level)'}: {value} is not a finite number",
                              origin)
        if isinstance(value, dict):
            stack.extend((v, (*where, k), level + 1) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, (*where, i), level + 1) for i, v in enumerate(value))


def _format_validation(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(_show(p) for p in first["loc"]) if first["loc"] else "(top level)"
    if first["type"] == "extra_forbidden":
        return f"unknown key '{where}'"
    if first["type"] == "invalid_key":
        return f"key '{where}' must be a string"
    return f"{where}: {' '.join(first['msg'].split())[:200]}"


def parse_recipe(text: str, origin: str, overrides: dict | None = None) -> Recipe:
    """Validate YAML text as a Recipe, with `overrides` (nested dict) applied on top."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise RecipeError(f"not valid YAML{where}", origin) from None
    except (ValueError, TypeError, OverflowError) as err:  # e.g. a timestamp like 2024-13-45
        raise RecipeError(f"not valid YAML ({' '.join(str(err).split())[:120]})", origin) from None
    except RecursionError:
        raise RecipeError("nested too deeply", origin) from None
    if data is None:
        raise RecipeError("recipe is empty (write {} to take every default)", origin)
    if not isinstance(data, dict):
        raise RecipeError("a recipe must be a mapping of keys to values", origin)
    _check_shape(data, origin)
    try:
        Recipe.model_validate(data)  # the file on its own: a flag must not hide a bad value in it
        return Recipe.model_validate(deep_merge(data, overrides or {}))
    except ValidationError as err:
        raise RecipeError(_format_validation(err), origin) from None


def deep_merge(base: dict, extra: dict) -> dict:
    """A copy of `base` with `extra` merged in (dicts recursively, `precisions` united, others replaced)."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if key == "precisions" and isinstance(out.get(key), list):
            out[key] = list(dict.fromkeys([*out[key], *value]))
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_recipe(spec: str | None, overrides: dict | None = None) -> tuple[Recipe, str]:
    """Resolve `spec` (a path, a preset name, or None for defaults); return (recipe, origin)."""
    if spec is None:
        return parse_recipe("{}", "(defaults)", overrides), "(defaults)"
    path = Path(spec)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise RecipeError("recipe file not found", path)
        try:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_RECIPE_BYTES + 1)
            if len(raw) > MAX_RECIPE_BYTES:
                raise RecipeError("recipe file larger than 1 MiB", path)
            text = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise RecipeError(f"cannot read recipe ({err.__class__.__name__})", path) from None
        return parse_recipe(text, str(path), overrides), str(path)
    if spec in preset_names():
        text = (preset_dir() / f"{spec}.yaml").read_text(encoding="utf-8")
        return parse_recipe(text, f"preset:{spec}", overrides), f"preset:{spec}"
    raise RecipeError(f"no such recipe file or preset (presets: {', '.join(preset_names())})", spec)


def recipe_to_yaml(recipe: Recipe) -> str:
    """The resolved recipe as YAML (what gets saved beside the artifacts)."""
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False)
