"""Load recipes: a YAML file or a preset name; merge CLI overrides; errors name file and key."""

from __future__ import annotations

import copy
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


def preset_dir() -> Path:
    """The preset recipes: the repository's recipes/ directory (EDGEKIT_RECIPES overrides)."""
    override = os.environ.get("EDGEKIT_RECIPES")
    if override:
        return Path(override)
    return Path(edgekit.__file__).resolve().parent.parent / "recipes"


def preset_names() -> list[str]:
    folder = preset_dir()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max([_depth(v, level + 1) for v in value.values()], default=level + 1)
    if isinstance(value, list):
        return max([_depth(v, level + 1) for v in value], default=level + 1)
    return level


def _format_validation(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        return f"unknown key '{where}'"
    return f"{where}: {first['msg']}"


def parse_recipe(text: str, origin: str, overrides: dict | None = None) -> Recipe:
    """Validate YAML text as a Recipe, with `overrides` (nested dict) applied on top."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise RecipeError(f"not valid YAML{where}", origin) from None
    except RecursionError:
        raise RecipeError("nested too deeply", origin) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError("a recipe must be a mapping of keys to values", origin)
    if _depth(data) > MAX_DEPTH:
        raise RecipeError(f"nested deeper than {MAX_DEPTH} levels", origin)
    merged = deep_merge(data, overrides or {})
    try:
        return Recipe.model_validate(merged)
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
        if path.stat().st_size > MAX_RECIPE_BYTES:
            raise RecipeError("recipe file larger than 1 MiB", path)
        try:
            text = path.read_text(encoding="utf-8")
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
