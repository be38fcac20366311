"""Flux stores: the labels store's and the sink map's per-month flags."""

import numpy as np
import pandas as pd
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonsink.grid import ModelGrid
from carbonsink.lake.features_store import read_month_flags
from carbonsink.lake.flux_store import (
    FluxLayout,
    ensemble,
    member_months,
    open_member,
    write_member_flags,
)
from carbonsink.lake.lake import Lake


@pytest.fixture
def layout():
    grid = ModelGrid(30.0)
    return FluxLayout(grid, grid.tiling(3, 6, tiles_per_chunk=1))


@pytest.mark.parametrize(("kind", "flag"), [("labels", "labelled"), ("sinkmap", "mapped")])
def test_the_flag_says_what_a_month_holds(tmp_path, layout, kind, flag):
    repo = Lake(str(tmp_path / "lake")).create_repo(kind)
    session = repo.writable_session("main")
    layout.create(session.store, kind)
    layout.add_member(session.store, "m", {})
    write_member_flags(session.store, layout, "m", [pd.Period("2016-03", "M")])
    assert list(zarr.open_group(session.store, path="m").array_keys()).count(flag) == 1
    assert [str(p) for p in member_months(session.store, layout, "m")] == ["2016-03"]
    assert [str(t)[:7] for t in open_member(session, "m")["time"].values] == ["2016-03"]
    assert flag not in open_member(session, "m")


@settings(max_examples=15)  # a repository per example
@given(
    written=st.dictionaries(st.integers(0, 59), st.sampled_from([0, 1]), max_size=20),
    commit=st.booleans(),
)
def test_month_flags_read_from_the_written_chunks_equal_the_whole_array(
    tmp_path_factory, written, commit
):
    """Flags written as 1 or 0 (``era5t`` writes both), committed or not, read like ``a[:]``."""
    repo = Lake(str(tmp_path_factory.mktemp("flags") / "lake")).create_repo("features")
    session = repo.writable_session("main")
    a = zarr.create_array(
        session.store, name="f", shape=(60,), chunks=(1,), dtype="int8", fill_value=0
    )
    for i, v in written.items():
        a[i] = v
    if commit:
        session.commit("flags")
        session = repo.readonly_session("main")
    got = read_month_flags(session.store, "f")
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, zarr.open_array(session.store, path="f", mode="r")[:])


def test_sink_maps_written_before_the_rename_still_read(tmp_path, layout):
    """Old sink maps call their flag ``labelled``: readers and writers take either."""
    repo = Lake(str(tmp_path / "lake")).create_repo("sinkmap")
    session = repo.writable_session("main")
    layout.create(session.store, "labels")  # the old code wrote this flag whatever the kind
    layout.add_member(session.store, "m", {})
    zarr.open_group(session.store, mode="r+").attrs["kind"] = "sinkmap"
    write_member_flags(session.store, layout, "m", [pd.Period("2020-01", "M")])
    assert [str(p) for p in member_months(session.store, layout, "m")] == ["2020-01"]
    assert "labelled" not in open_member(session, "m")


@pytest.mark.parametrize(
    ("imported", "with_reference", "expected"),
    [
        ([], False, ["ref-dry", "ref-moderate"]),  # references alone: they are the ensemble
        (["CLASSIC"], False, ["CLASSIC"]),  # imported members: the references stay out
        (["CLASSIC"], True, ["CLASSIC", "ref-dry", "ref-moderate"]),  # unless asked
        (["ORCHIDEE"], False, ["ref-dry", "ref-moderate"]),  # imported, but not trained
    ],
)
def test_imported_members_make_the_ensemble_without_the_references(
    imported, with_reference, expected
):
    candidates = ["CLASSIC", "ref-dry", "ref-moderate"]
    if not set(imported) & set(candidates):
        candidates = ["ref-dry", "ref-moderate"]
    assert ensemble(candidates, imported, with_reference=with_reference) == expected
