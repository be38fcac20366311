"""One typed settings object for every command, composed of the layers' sections.

Precedence, lowest first: the defaults below < a YAML file (``--config`` or
``CARBONSINK_CONFIG``) < environment variables ``CARBONSINK_*`` (nested fields with ``__``,
e.g. ``CARBONSINK_DASK__ADDRESS``) < command-line flags. The same command therefore runs
unchanged on a laptop, in a Kubernetes Job (ConfigMap + env) or as a RayJob entrypoint.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from carbonsink.drivers import DRIVERS
from carbonsink.errors import ConfigError, brief
from carbonsink.grid import ModelGrid
from carbonsink.storage import StorageOptions
from carbonsink.timeutil import MonthWindow, parse_month
from cluster.settings import DaskSettings, RaySettings, Section, ServeSettings

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BudgetSettings",
    "CompactSettings",
    "DaskSettings",
    "EmulatorSettings",
    "ExportSettings",
    "GridSettings",
    "IngestSettings",
    "LabelsSettings",
    "RaySettings",
    "SampleSettings",
    "ServeSettings",
    "Settings",
    "load_settings",
    "unknown_variables",
]

_config_file: ContextVar[Path | None] = ContextVar("carbonsink_config_file", default=None)


def _as_value_error(check: Any, *args: Any, **kwargs: Any) -> None:
    # Inside validators a ValueError lets pydantic name the setting in the message.
    try:
        check(*args, **kwargs)
    except ConfigError as exc:
        raise ValueError(str(exc)) from exc


class GridSettings(Section):
    """The model grid and its emulator tiles (store chunks follow the tiles)."""

    resolution: float = Field(0.25, description="cell size in degrees: 0.25, 0.5 or 1")
    tile_lat: int = Field(180, gt=0, description="tile height in cells")
    tile_lon: int = Field(360, gt=0, description="tile width in cells")
    chunk_tiles: int = Field(2, gt=0, description="tiles per store chunk along each axis")

    @field_validator("resolution")
    @classmethod
    def _divides(cls, v: float) -> float:
        _as_value_error(ModelGrid, v)
        return v


class IngestSettings(Section):
    """How ERA5 becomes monthly drivers."""

    drivers: list[str] | None = Field(None, description="driver names (default: all)")
    baseline_start: str = Field("2015-01", description="first month of the climatology")
    baseline_end: str = Field("2022-12", description="last month of the climatology")
    min_valid_fraction: float = Field(
        0.01,
        gt=0.0,
        le=1.0,
        description="share of a model cell that valid (non-NaN) source data must cover",
    )

    @field_validator("drivers")
    @classmethod
    def _known(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            unknown = [d for d in v if d not in DRIVERS]
            if unknown:
                raise ValueError(f"unknown driver(s) {unknown}; choose from {list(DRIVERS)}")
            if not v:
                raise ValueError("empty driver list")
        return v

    @field_validator("baseline_start", "baseline_end")
    @classmethod
    def _month(cls, v: str) -> str:
        _as_value_error(parse_month, v, what="baseline month")
        return v

    @property
    def baseline(self) -> MonthWindow:
        """The climatology baseline window (at least 12 months: every calendar month)."""
        w = MonthWindow.parse(self.baseline_start, self.baseline_end)
        if len(w) < 12:
            raise ConfigError(
                f"climatology baseline {w} has {len(w)} month(s); it needs every calendar "
                "month: give at least 12 months (whole years are best)"
            )
        return w


class LabelsSettings(Section):
    """Training targets: the reference process models, or imported TRENDY / GOBM files."""

    end: str = Field(
        "2022-12",
        description="last month with labels: process models lag, newer months stay unlabelled",
    )
    members: list[str] | None = Field(None, description="reference members to run (default: all)")
    nbp: str | None = Field(None, description="TRENDY S2 nbp file to import instead")
    fgco2: str | None = Field(None, description="GOBM / data-product fgco2 file to import")
    member: str | None = Field(None, description="member name for imported files")

    @field_validator("end")
    @classmethod
    def _month(cls, v: str) -> str:
        _as_value_error(parse_month, v, what="labels end month")
        return v


class EmulatorSettings(Section):
    """CNN emulators: semi-supervised training and the skill report."""

    members: list[str] | None = Field(
        None,
        description="members to train (default: the imported TRENDY/GOBM members if the "
        "labels hold any, else the reference members)",
    )
    holdout_start: str = Field("2021-01", description="first held-out month (for skill)")
    holdout_end: str = Field("2022-12", description="last held-out month")
    crop: int = Field(32, ge=8, le=256, description="training crop size in cells (interior)")
    crops_per_month: int = Field(40, ge=1, description="training crops sampled per month")
    epochs: int = Field(8, ge=1)
    batch_size: int = Field(64, ge=1)
    hidden: int = Field(32, ge=4, description="CNN width")
    learning_rate: float = Field(3e-3, gt=0)
    consistency_weight: float = Field(
        0.2, ge=0, description="weight of the mean-teacher loss on unlabelled months"
    )
    ema_decay: float = Field(0.99, gt=0, lt=1, description="mean-teacher EMA decay")
    input_noise: float = Field(0.1, ge=0, description="std of the consistency perturbation")
    compare_supervised: bool = Field(
        True, description="also train supervised-only emulators and report the difference"
    )
    seed: int = 0
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")

    @field_validator("holdout_start", "holdout_end")
    @classmethod
    def _month(cls, v: str) -> str:
        _as_value_error(parse_month, v, what="held-out month")
        return v

    @property
    def holdout(self) -> MonthWindow:
        """The held-out window."""
        return MonthWindow.parse(self.holdout_start, self.holdout_end)


class BudgetSettings(Section):
    """The carbon budget: GCB release, bias adjustment, GATM and emission extension."""

    gcb: str | None = Field(
        None,
        description="GCB release: a packaged name (GCB2025v1.0, GCB2024v1.0), a workbook "
        ".xlsx or a <release>_global_carbon_budget.csv export (default: the newest packaged)",
    )
    reference_start: int = Field(2019, ge=1959, le=2100, description="first reference year")
    reference_end: int = Field(2022, ge=1959, le=2100, description="last reference year")
    statistic: str = Field(
        "median", pattern=r"^(median|mean)$", description="GCB per-model statistic matched"
    )
    extension: str = Field(
        "persistence",
        pattern=r"^(persistence|trend)$",
        description="EFOS/ELUC for years after the release: last year, or 5-year linear trend",
    )
    emissions: str | None = Field(
        None, description="CSV of year,EFOS,ELUC (GtC/yr) overriding the release"
    )
    noaa_site: str = Field("gl", pattern=r"^(gl|mlo)$", description="NOAA growth: gl or mlo")
    noaa_monthly: str | None = Field(
        None,
        description="a current NOAA co2_mm_gl.csv for the 12-month budgets' GATM (default: "
        "the packaged record, then Mauna Loa's where it ends)",
    )
    baseline_start: int = Field(
        2015, ge=1900, le=2100, description="first year of regional anomalies' baseline"
    )
    baseline_end: int = Field(2022, ge=1900, le=2100, description="last year of that baseline")

    @model_validator(mode="after")
    def _window(self) -> BudgetSettings:
        if self.reference_end < self.reference_start:
            raise ValueError(
                f"reference window {self.reference_start}-{self.reference_end} is empty; "
                "put the start before the end"
            )
        return self


class SampleSettings(Section):
    """The synthetic ERA5-like input of ``carbonsink run`` and the tests."""

    out: str | None = Field(None, description="where sample-data writes its Zarr store")
    overwrite: bool = Field(False, description="replace an existing sample store")
    start: str = "2015-01"
    end: str = "2024-12"
    resolution: float = 0.25
    step: str = Field("1MS", pattern=r"^(1h|6h|1D|1MS)$")
    seed: int = 0
    era5t_months: int = Field(3, ge=0)
    zarr_format: int = Field(2, ge=2, le=3)


class ExportSettings(Section):
    """``carbonsink export``: where a window of the sink map goes, and as what."""

    out: str | None = Field(None, description="file (NetCDF) or store path/URL (Zarr)")
    format: str = Field("netcdf", pattern=r"^(netcdf|zarr)$", description="netcdf or zarr")


class CompactSettings(Section):
    """``carbonsink compact``: how much of the lake's history to keep."""

    keep_days: float = Field(30.0, description="history newer than this many days is kept")


class Settings(BaseSettings):
    """Every setting of carbonsink. See ``docs/configuration.md`` for a YAML example."""

    model_config = SettingsConfigDict(
        env_prefix="CARBONSINK_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    source: str | None = Field(None, description="ERA5 source URL (ARCO-ERA5 Zarr or CDS files)")
    source_storage: StorageOptions = StorageOptions()
    lake: str = Field("output/lake", description="root URL of the lake")
    lake_storage: StorageOptions = StorageOptions()
    start: str | None = Field(None, description="first month of the window, YYYY-MM")
    end: str | None = Field(None, description="last month of the window, YYYY-MM")
    partition_months: int = Field(
        12, ge=1, le=120, description="months per backfill unit (12: calendar years)"
    )
    tile_bands: int = Field(
        3, ge=1, le=64, description="bands of tile rows per backfill partition's map stage"
    )
    grid: GridSettings = GridSettings()
    dask: DaskSettings = DaskSettings()
    ingest: IngestSettings = IngestSettings()
    labels: LabelsSettings = LabelsSettings()
    emulator: EmulatorSettings = EmulatorSettings()
    ray: RaySettings = RaySettings()
    serve: ServeSettings = ServeSettings()
    budget: BudgetSettings = BudgetSettings()
    sample: SampleSettings = SampleSettings()
    export: ExportSettings = ExportSettings()
    compact: CompactSettings = CompactSettings()
    out: str = Field("output", description="folder of carbonsink run's sample data and lake")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """CLI flags (init) > environment > YAML file > defaults."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file.get()
        if path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)

    def window(self) -> MonthWindow:
        """The ``start``..``end`` window (both required)."""
        if not self.start or not self.end:
            raise ConfigError("no window: pass --start YYYY-MM and --end YYYY-MM")
        return MonthWindow.parse(self.start, self.end)

    def with_window(self, start: str | pd.Period, end: str | pd.Period) -> Settings:
        """These settings for the window ``start``..``end``, checked as ``--start``/``--end``.

        A stage of a composite flow (run, nrt, backfill) gets its window through this, so
        a window is validated however it was made.

        Raises
        ------
        ConfigError
            A month is not YYYY-MM, or ``end`` comes before ``start``.
        """
        window = MonthWindow.parse(str(start), str(end))
        return self.model_copy(update={"start": str(window.start), "end": str(window.end)})


def _describe(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "settings"
    msg = first["msg"].removeprefix("Value error, ")
    given = first.get("input")
    shown = f"={given!r}" if given is not None and not isinstance(given, dict) else ""
    more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    # The environment variable that gave it, if one did (a whole section, or the field).
    parts = [str(p).upper() for p in first["loc"]]
    given_by = [
        name
        for k in range(len(parts), 0, -1)
        if (name := "CARBONSINK_" + "__".join(parts[:k])) in os.environ
    ]
    fix = (
        f"fix the environment variable {given_by[0]}"
        if given_by
        else "fix it in the flags, CARBONSINK_* variables or the config file"
    )
    return f"invalid setting {where}{shown}: {msg}{more}; {fix}"


#: ``CARBONSINK_*`` variables that are not settings but are read by carbonsink.
OTHER_VARIABLES = frozenset(
    {
        "CARBONSINK_CONFIG",  # the YAML file
        "CARBONSINK_DEBUG",  # tracebacks instead of one-line errors
        "CARBONSINK_PROGRESS",  # progress bars on or off
        "CARBONSINK_CACHE_DIR",  # the land mask's cache
    }
)


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """``CARBONSINK_*`` variables of the environment that no setting reads (typos, say).

    pydantic-settings ignores them; a user who set ``CARBONSINK_SERVE__REPLICA=3`` should
    hear that it did nothing.
    """
    env = os.environ if environ is None else environ
    out = []
    for key in sorted(k for k in env if k.upper().startswith("CARBONSINK_")):
        if key.upper() in OTHER_VARIABLES:
            continue
        path = key[len("CARBONSINK_") :].lower().split("__")
        model: Any = Settings
        for part in path:
            fields = getattr(model, "model_fields", None)
            if fields is None or part not in fields:
                out.append(key)
                break
            model = fields[part].annotation
    return out


def load_settings(config: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Build the settings from every layer.

    Parameters
    ----------
    config
        YAML file; defaults to ``$CARBONSINK_CONFIG`` if set.
    **overrides
        Values from command-line flags (``None`` values are ignored); nested sections as
        dicts, e.g. ``dask={"address": "tcp://..."}``.

    Raises
    ------
    ConfigError
        One line naming the bad setting, for invalid values or an unreadable file.
    """
    path = config or os.environ.get("CARBONSINK_CONFIG")
    p = Path(path).expanduser() if path else None
    if p is not None and not p.is_file():
        raise ConfigError(f"config file {p} does not exist; check --config or CARBONSINK_CONFIG")
    clean = _drop_none(overrides)
    token = _config_file.set(p)
    try:
        return Settings(**clean)
    except ValidationError as err:
        raise ConfigError(_describe(err)) from err
    except ConfigError:
        raise
    except SettingsError as exc:  # a section given whole as one variable, not valid JSON
        m = re.search(r"field \W?(\w+)\W? from source \W?EnvSettingsSource", str(exc))
        if m:
            var = f"CARBONSINK_{m.group(1).upper()}"
            raise ConfigError(
                f"environment variable {var} is not a JSON object of {m.group(1)} settings; "
                f"set its fields one by one ({var}__<FIELD>=...) or unset it"
            ) from exc
        raise ConfigError(f"cannot read settings ({brief(exc)}); fix the config file") from exc
    except Exception as exc:  # YAML syntax errors and the like
        raise ConfigError(f"cannot read settings ({brief(exc)}); fix the config file") from exc
    finally:
        _config_file.reset(token)


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            sub = _drop_none(v)
            if sub:
                out[k] = sub
        elif v is not None:
            out[k] = v
    return out
