"""The command line's composition root: every command found from its name, bound once."""

import importlib
import subprocess
import sys

import pytest
from typer.main import get_command

from pipelines.cli import COMMANDS, app, summary
from pipelines.settings import unknown_variables


def test_each_command_is_the_command_of_the_module_named_after_it():
    for name, module in COMMANDS.items():
        # A newcomer finds `carbonsink compact` in pipelines/lake/compact.py, and so on.
        assert module.rsplit(".", 1)[1] == name.replace("-", "_")
        assert module.split(".")[1] in ("stages", "flows", "lake")
        doc = importlib.import_module(module).command.__doc__
        assert doc.splitlines()[0] == summary(name)


def test_top_level_help_imports_no_command_module():
    code = (
        "import sys\n"
        "from pipelines.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "from pipelines.cli import COMMANDS\n"
        "heavy = [m for m in sys.modules if m in COMMANDS.values()"
        " or m.split('.')[0] in ('torch', 'ray', 'distributed', 'xarray')]\n"
        "print('HEAVY', heavy)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in r.stdout, r.stdout
    for name in COMMANDS:
        assert f"  {name} " in r.stdout


@pytest.mark.parametrize("name", list(COMMANDS))
def test_options_are_bound_once_to_real_settings(name):
    group = get_command(app)
    command = group.get_command(None, name)
    for param in command.params:
        if param.name == "config":
            assert param.envvar == "CARBONSINK_CONFIG"
            continue
        # No option reads the environment itself: the settings do, once for every layer.
        assert not param.envvar, f"{name} {param.opts} declares {param.envvar}"
        variable = param.help.rsplit("[", 1)[1].rstrip("]")
        assert variable.startswith("CARBONSINK_"), f"{name} {param.opts}: {param.help}"
        assert unknown_variables({variable: "x"}) == [], f"{name} {param.opts} -> {variable}"
