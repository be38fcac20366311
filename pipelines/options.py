"""Command-line options, each bound to one setting, and the settings they build.

Every option here sets a field of :class:`pipelines.settings.Settings`; the settings read the
same field from ``CARBONSINK_*`` variables and the YAML file, so no option declares an
environment variable of its own (one binding per setting). Each option's help names the
variable, derived from the field's path. Precedence: flag > environment > file > default.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from pipelines.settings import Settings


def setting(*flags: str, path: str, help: str) -> Any:
    """A typer option for the setting at ``path`` (``section.field``), its variable in its help.

    The value is passed to :func:`settings`, not read from the environment by typer.
    """
    variable = "CARBONSINK_" + "__".join(p.upper() for p in path.split("."))
    return typer.Option(*flags, help=f"{help} [{variable}]", show_default=False)


def settings(config: Path | None, **overrides: Any) -> Settings:
    """The settings of a command: ``overrides`` (its flags) over the environment and the file.

    Warns once on stderr about ``CARBONSINK_*`` variables that no setting reads.

    Raises
    ------
    carbonsink.errors.ConfigError
        One line naming the bad setting.
    """
    from pipelines.settings import load_settings, unknown_variables

    for name in unknown_variables():
        typer.echo(
            f"warning: {name} is not a carbonsink setting and is ignored "
            "(docs/configuration.md lists them)",
            err=True,
        )
    return load_settings(config, **overrides)


def echo(line: str) -> None:
    """A line of results on stdout (progress and messages go to stderr)."""
    typer.echo(line)


def outputs(pairs: list[tuple[str, str]]) -> None:
    """``label: path`` lines, aligned, for what a command made."""
    for label, path in pairs:
        echo(f"{label + ':':14s}{path}")


def split(value: str | None) -> list[str] | None:
    """A comma-separated list option."""
    return value.split(",") if value else None


ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", envvar="CARBONSINK_CONFIG", help="YAML settings file (docs/configuration.md)."
    ),
]
LakeOpt = Annotated[str | None, setting("--lake", path="lake", help="Root URL of the lake.")]
SourceOpt = Annotated[
    str | None,
    setting(
        "--source",
        path="source",
        help="ERA5 source: an ARCO-ERA5-layout Zarr store (file://, s3://, gs://, memory://) "
        "or CDS GRIB/NetCDF files (a path or a glob).",
    ),
]
StartOpt = Annotated[str | None, setting("--start", path="start", help="First month, YYYY-MM.")]
EndOpt = Annotated[str | None, setting("--end", path="end", help="Last month, YYYY-MM.")]
DaskAddressOpt = Annotated[
    str | None,
    setting(
        "--dask-address",
        path="dask.address",
        help="Dask scheduler to use, e.g. tcp://10.0.0.5:8786 (default: a local cluster).",
    ),
]
RayAddressOpt = Annotated[
    str | None,
    setting(
        "--ray-address",
        path="ray.address",
        help="Ray cluster to use, e.g. ray://head:10001 or auto (default: a local Ray).",
    ),
]
NoaaMonthlyOpt = Annotated[
    str | None,
    setting(
        "--noaa-monthly",
        path="budget.noaa_monthly",
        help="A current NOAA co2_mm_gl.csv for the 12-month GATM (default: the packaged one).",
    ),
]
HoldoutStartOpt = Annotated[
    str | None,
    setting(
        "--holdout-start",
        path="emulator.holdout_start",
        help="First held-out month (never trained on; scored by evaluate).",
    ),
]
HoldoutEndOpt = Annotated[
    str | None,
    setting("--holdout-end", path="emulator.holdout_end", help="Last held-out month."),
]
VariantOpt = Annotated[
    str | None,
    setting(
        "--variant",
        path="serve.variant",
        help="Emulators to use: mean-teacher (default) or supervised.",
    ),
]
WithReferenceOpt = Annotated[
    bool | None,
    setting(
        "--with-reference/--without-reference",
        path="serve.with_reference",
        help="Map the reference members too when the lake has imported TRENDY/GOBM members "
        "(by default those alone are the ensemble).",
    ),
]
