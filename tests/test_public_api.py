"""The public API (``carbonsink.open_lake``), and the README's Python example run as written."""

import ast
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

import carbonsink
from carbonsink.errors import LakeError
from carbonsink.lake.features_store import read_attrs
from carbonsink.lake.flux_store import ENSEMBLE_MEDIAN, FluxLayout, member_months, read_flux
from carbonsink.lake.lake import Lake

README = Path(__file__).parents[1] / "README.md"


def readme_example() -> str:
    """The Python block under the README's "Open the outputs in Python"."""
    text = README.read_text()
    section = text[text.index("## Open the outputs in Python") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_uses_only_the_public_api():
    tree = ast.parse(readme_example())
    imported = [
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)
        for a in n.names
    ]  # fmt: skip
    assert imported == ["carbonsink"]
    used = {
        n.attr for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
        and n.value.id == "carbonsink"
    }  # fmt: skip
    assert used and used <= set(carbonsink.__all__)


def test_the_public_names_are_exported():
    for name in carbonsink.__all__:
        assert getattr(carbonsink, name) is not None
    with pytest.raises(AttributeError):
        carbonsink.not_a_name  # noqa: B018


@pytest.mark.integration
def test_the_readme_example_runs_on_a_mapped_lake(mapped_lake, tmp_path, monkeypatch, capsys):
    (tmp_path / "output").mkdir()
    shutil.copytree(mapped_lake, tmp_path / "output" / "lake")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(readme_example(), str(README), "exec"), scope)
    printed = capsys.readouterr().out
    assert re.search(r"2016-12: land -?\d+\.\d\d, ocean -?\d+\.\d\d GtC/yr", printed)
    assert "BIM" in printed
    # Its global totals are those of the stored fields.
    store = Lake(str(mapped_lake)).open_repo("sinkmap").readonly_session("main").store
    layout = FluxLayout.from_attrs(read_attrs(store))
    features = Lake(str(mapped_lake)).open_repo("features").readonly_session("main").store
    area = np.asarray(zarr.open_array(features, path="cell_area", mode="r")[...])
    land = read_flux(store, ENSEMBLE_MEDIAN, "land_flux", layout.month_index(pd.Period("2016-12")))
    want = np.nansum(land * area) * 365.25 * 86400 / 1e12
    assert scope["land"] == pytest.approx(want, rel=1e-5)


@pytest.mark.integration
def test_open_lake_holds_only_months_with_data_and_reads_past_runs(mapped_lake):
    lake = carbonsink.open_lake(str(mapped_lake))
    store = Lake(str(mapped_lake)).open_repo("sinkmap").readonly_session("main").store
    layout = FluxLayout.from_attrs(read_attrs(store))
    sinks = lake.sinkmap()
    mapped = member_months(store, layout, ENSEMBLE_MEDIAN)
    assert list(sinks.indexes["time"].to_period("M")) == list(mapped)
    assert {"cell_area", "land_fraction"} <= set(sinks.coords)
    assert lake.members() and ENSEMBLE_MEDIAN not in lake.members()
    one = lake.sinkmap(lake.members()[0])
    assert one.land_flux.shape == sinks.land_flux.shape
    drivers = lake.features()
    assert drivers.sizes["time"] == 24 and "cell_area" in drivers.coords  # 2015-2016
    budget = lake.budget()
    assert list(budget.index) == [2016] and {"SLAND", "SOCEAN", "BIM"} <= set(budget.columns)
    assert budget.attrs["gcb_release"]
    regions = lake.regions()
    assert {"region", "flux", "value", "unit"} <= set(regions.columns)
    assert lake.regions(monthly=True).index.name == "month"
    # A past run by its tag: the sink map as that run published it.
    tag = lake.tags("sinkmap")[-1]
    assert lake.at(tag).sinkmap().sizes == sinks.sizes


def test_open_lake_refuses_a_missing_lake_or_store(tmp_path):
    with pytest.raises(LakeError, match="no carbonsink lake at"):
        carbonsink.open_lake(str(tmp_path / "nothing"))
    Lake(str(tmp_path / "empty")).create()
    with pytest.raises(LakeError, match="has no sinkmap store yet; run carbonsink infer"):
        carbonsink.open_lake(str(tmp_path / "empty")).sinkmap()


@pytest.mark.integration
def test_open_lake_refuses_a_member_ref_or_table_it_lacks(mapped_lake):
    lake = carbonsink.open_lake(str(mapped_lake))
    with pytest.raises(LakeError, match="has no member 'nope'"):
        lake.sinkmap("nope")
    with pytest.raises(LakeError, match="no branch or tag 'run-x'"):
        lake.at("run-x").budget()
    with pytest.raises(LakeError, match="no table 'x'"):
        lake.table("x")
