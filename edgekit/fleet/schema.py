"""FLEET.yaml: models with their recipes and calibration data, and the devices to bench on.

    version: 1
    models:
      - path: models/digits.keras       # relative paths are relative to FLEET.yaml
        name: digits                    # [default: the file's stem]; names are unique
        recipe: int8                    # preset name or recipe file [default: edgekit's defaults]
        calibration: calibration_data/digits   # overrides the recipe's calibration.source
    devices: [pixel7, orin]             # inventory names [default: none: compress only]
    inventory: devices.yaml             # [default: the usual lookup, see `edgekit devices`]
    bench: {runs: 20, warmup: 2}        # per device and artifact [defaults shown]
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edgekit.errors import RecipeError
from edgekit.yamlconfig import load_mapping, validation_message

MAX_FLEET_BYTES = 1 << 20


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FleetModel(_Strict):
    path: str
    name: Optional[str] = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    recipe: Optional[str] = None
    calibration: Optional[str] = None
    trust_model: bool = False

    @property
    def label(self) -> str:
        return self.name or Path(self.path).name.split(".")[0]


class BenchSettings(_Strict):
    runs: int = Field(20, ge=1, le=100000)
    warmup: int = Field(2, ge=0, le=10000)


class Fleet(_Strict):
    version: int = Field(1, ge=1, le=1)
    models: list[FleetModel] = Field(min_length=1)
    devices: list[str] = Field(default_factory=list)
    inventory: Optional[str] = None
    bench: BenchSettings = Field(default_factory=BenchSettings)

    @model_validator(mode="after")
    def _unique(self):
        names = [m.label for m in self.models]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate:
            raise ValueError(f"two models are named '{duplicate}': give them distinct `name`s")
        if len(set(self.devices)) != len(self.devices):
            raise ValueError("a device is listed twice")
        return self


def _resolve(base: Path, value: Optional[str]) -> Optional[str]:
    if value is None or Path(value).is_absolute():
        return value
    candidate = base / value
    return str(candidate) if candidate.exists() or "/" in value or value.endswith((".yaml", ".yml")) else value


def load_fleet(path: str | Path) -> Fleet:
    """Parse and validate FLEET.yaml; paths become relative to its folder (errors name the file)."""
    path = Path(path)
    try:
        raw = path.read_bytes()[:MAX_FLEET_BYTES + 1]
    except OSError as err:
        raise RecipeError(f"cannot read the fleet file ({err.strerror})", path) from None
    if len(raw) > MAX_FLEET_BYTES:
        raise RecipeError("fleet file larger than 1 MiB", path)
    data = load_mapping(raw.decode("utf-8", errors="replace"), str(path), RecipeError) or {}
    try:
        fleet = Fleet.model_validate(data)
    except ValidationError as err:
        raise RecipeError(validation_message(err), path) from None
    base = path.absolute().parent
    for model in fleet.models:
        model.path = str(base / model.path) if not Path(model.path).is_absolute() else model.path
        model.recipe = _resolve(base, model.recipe)
        model.calibration = _resolve(base, model.calibration)
    fleet.inventory = _resolve(base, fleet.inventory)
    return fleet
