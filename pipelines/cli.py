"""The ``carbonsink`` command line: the composition root.

Each command's typer function is ``command`` in the module that runs it, named after it:
single stages in ``pipelines/stages/``, composite flows in ``pipelines/flows/``, lake
operations in ``pipelines/lake/``. Modules are imported only for the command being run, so
``carbonsink --help`` and a command's start do not pay for the others' imports (torch, Ray).
Options are bound once, to the settings (:mod:`pipelines.options`); exit codes are
:mod:`pipelines.exits`'.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup
from typer.main import get_command_from_info
from typer.models import CommandInfo

from carbonsink import __version__
from carbonsink.memory import keep_freed_memory
from pipelines.exits import run_app

HELP = """\
carbonsink maps last month's land and ocean CO2 sinks and closes the global carbon budget:
Dask turns ERA5 into monthly climate drivers, Ray Serve runs CNN emulators of vegetation and
ocean models over them, and the budget EFOS + ELUC = GATM + SOCEAN + SLAND + BIM follows.

Examples (each command's --help has its own):

\b
    # the whole chain on synthetic sample data (a demonstration, not ERA5)
    carbonsink run --out output
    # your own ERA5 from the Copernicus data store (docs/use-your-own-data.md)
    carbonsink ingest --source 'era5/*.nc' --lake lake --start 2015-01 --end 2024-12
    carbonsink labels --lake lake
    carbonsink train --lake lake
    carbonsink infer --lake lake --start 2019-01 --end 2024-12
    carbonsink budget --lake lake
    carbonsink report --lake lake

Every option can also come from a CARBONSINK_* variable (shown in each --help) or a YAML
file (--config). Exit codes: 0 done, 2 bad input or a problem to fix (one line says which),
1 unexpected, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""

#: Command -> the module whose ``command`` it is, in the order ``--help`` lists them.
COMMANDS = {
    "run": "pipelines.flows.run",
    "sample-data": "pipelines.stages.sample_data",
    "ingest": "pipelines.stages.ingest",
    "labels": "pipelines.stages.labels",
    "train": "pipelines.stages.train",
    "evaluate": "pipelines.stages.evaluate",
    "infer": "pipelines.stages.infer",
    "budget": "pipelines.stages.budget",
    "report": "pipelines.stages.report",
    "export": "pipelines.stages.export",
    "serve": "pipelines.stages.serve",
    "nrt": "pipelines.flows.nrt",
    "backfill": "pipelines.flows.backfill",
    "status": "pipelines.lake.status",
    "compact": "pipelines.lake.compact",
}
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def summary(name: str) -> str:
    """A command's one-line summary: its docstring's first line, read without importing it."""
    spec = importlib.util.find_spec(COMMANDS[name])
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "command":
            return (ast.get_docstring(node) or "").splitlines()[0]
    raise LookupError(f"{COMMANDS[name]} has no command")


class Commands(TyperGroup):
    """The commands of :data:`COMMANDS`, each built from its module when it is run."""

    def list_commands(self, ctx: Any) -> list[str]:  # noqa: D102
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:  # noqa: D102
        if cmd_name not in COMMANDS:
            return None
        module = importlib.import_module(COMMANDS[cmd_name])
        info = CommandInfo(name=cmd_name, callback=module.command, context_settings=CONTEXT)
        return get_command_from_info(info, pretty_exceptions_short=False, rich_markup_mode=None)

    def format_commands(self, ctx: Any, formatter: Any) -> None:  # noqa: D102
        with formatter.section("Commands"):
            formatter.write_dl([(name, summary(name)) for name in COMMANDS])


app = typer.Typer(
    cls=Commands,
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings=CONTEXT,
)


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", is_eager=True)
    ] = False,
) -> None:
    if version:
        typer.echo(f"carbonsink {__version__}")
        raise typer.Exit()


def main(argv: list[str] | None = None) -> None:
    """The ``carbonsink`` entry point (:func:`pipelines.exits.run_app` over :data:`app`)."""
    # The command's own process trains and runs emulators and reads whole fields: passes
    # over large arrays ran 1.3-3.5x faster with freed memory kept for reuse (see the module).
    keep_freed_memory()
    run_app(app, argv)


if __name__ == "__main__":  # pragma: no cover
    main()
