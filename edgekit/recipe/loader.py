"""Load recipes: a YAML file or a preset name; merge CLI overrides; errors name file and key.

Recipe files are untrusted: at most 1 MiB, UTF-8, parsed with PyYAML's safe loader, then refused
if empty, nested deeper than 20 levels, larger than 10,000 values once anchors/aliases are
expanded (billion laughs), or holding NaN/Inf numbers; schema errors name the key path.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import yaml
from pydantic import ValidationError

import edgekit
from edgekit.errors import RecipeError
from edgekit.recipe.schema import Recipe
from edgekit.yamlconfig import load_mapping, validation_message

MAX_RECIPE_BYTES = 1 << 20


def preset_dir() -> Path:
    """The preset recipes: edgekit/presets, a link to the repository's recipes/ that wheels
    carry as files (EDGEKIT_RECIPES overrides)."""
    override = os.environ.get("EDGEKIT_RECIPES")
    if override:
        return Path(override)
    return Path(edgekit.__file__).resolve().parent / "presets"


def preset_names() -> list[str]:
    folder = preset_dir()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def parse_recipe(text: str, origin: str, overrides: dict | None = None) -> Recipe:
    """Validate YAML text as a Recipe, with `overrides` (nested dict) applied on top."""
    data = load_mapping(text, origin, RecipeError)
    if data is None:
        raise RecipeError("recipe is empty (write {} to take every default)", origin)
    try:
        Recipe.model_validate(data)  # the file on its own: a flag must not hide a bad value in it
        return Recipe.model_validate(deep_merge(data, overrides or {}))
    except ValidationError as err:
        raise RecipeError(validation_message(err), origin) from None


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
