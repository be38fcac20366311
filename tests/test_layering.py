"""The layers of docs/design.md hold: pipelines > cluster > carbonsink, and the library
imports no cluster engine (checked statically by import-linter and at run time)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_import_linter_contracts():
    from importlinter.cli import lint_imports

    assert lint_imports(config_filename=str(ROOT / "pyproject.toml")) == 0


def test_library_imports_no_engine_at_run_time():
    code = (
        "import sys, carbonsink.features, carbonsink.sources, carbonsink.lake.features_store, "
        "carbonsink.sample.store, carbonsink.config;"
        "bad = [m for m in ('distributed', 'ray', 'cluster', 'pipelines') if m in sys.modules];"
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, f"carbonsink imported {r.stdout.strip()} {r.stderr[-500:]}"


def test_cluster_does_not_import_pipelines():
    code = "import sys, cluster.dask; sys.exit(1 if 'pipelines' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
