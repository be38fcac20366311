"""The layers of docs/design.md hold: pipelines > cluster > carbonsink; no module imports
itself around a loop; the library imports no cluster engine (checked statically by
import-linter and at run time)."""

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
        "carbonsink.sample.store, carbonsink.emulator.fit, carbonsink.budget.build, "
        "carbonsink.lake.sinkmap;"
        "bad = [m for m in ('distributed', 'ray', 'cluster', 'pipelines') if m in sys.modules];"
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, f"carbonsink imported {r.stdout.strip()} {r.stderr[-500:]}"


def test_cluster_does_not_import_pipelines():
    code = "import sys, cluster.dask; sys.exit(1 if 'pipelines' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def import_cycles(graph) -> list[list[str]]:
    """Groups of modules that import each other, directly or around a loop (Tarjan)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        order[module] = low[module] = len(order)
        stack.append(module)
        for target in sorted(graph.find_modules_directly_imported_by(module)):
            if target not in order:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], order[target])
        if low[module] == order[module]:
            group = [stack.pop()]
            while group[-1] != module:
                group.append(stack.pop())
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in order:
            visit(module)
    return cycles


def test_no_import_cycles():
    # Imports under TYPE_CHECKING and inside functions count: a loop of them still ties
    # two modules into one, and hides which of them is the lower layer.
    import grimp

    graph = grimp.build_graph("carbonsink", "cluster", "pipelines", cache_dir=None)
    assert import_cycles(graph) == []


def test_the_cycle_finder_finds_a_loop():
    import grimp

    graph = grimp.ImportGraph()
    for a, b in [("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")]:
        graph.add_import(importer=a, imported=b)
    assert import_cycles(graph) == [["p.a", "p.b", "p.c"]]
