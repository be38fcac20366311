import json

import numpy as np
import pytest
import zarr

from carbonsink.errors import ConfigError, LakeError
from carbonsink.grid import ModelGrid
from carbonsink.lake.features_store import (
    FeaturesLayout,
    ingested_months,
    merge_forks,
    open_features,
    read_layout,
    write_flags,
    write_region,
)
from carbonsink.lake.lake import MANIFEST_SPLIT_MONTHS, MARKER, Lake
from carbonsink.timeutil import MonthWindow


def test_marker_and_not_a_lake(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    assert lake.info() is None
    lake.create()
    assert json.loads((tmp_path / "lake" / MARKER).read_text())["format"] == 1
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("hello")
    with pytest.raises(LakeError, match="is not a carbonsink lake"):
        Lake(str(tmp_path / "other")).info()
    with pytest.raises(ConfigError, match="memory://"):
        Lake("memory://x")


def test_destroy_only_empty_lakes(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    lake.create()
    lake.destroy_if_empty()
    assert not (tmp_path / "lake").exists()
    lake.create()
    lake.create_repo("features")
    lake.destroy_if_empty()
    assert (tmp_path / "lake" / "features").exists()


@pytest.fixture
def features_repo(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    repo = lake.create_repo("features")
    grid = ModelGrid(10.0)
    layout = FeaturesLayout(grid, grid.tiling(9, 18, tiles_per_chunk=1), ("t2m", "sst"))
    s = repo.writable_session("main")
    layout.create(s.store, np.zeros(grid.shape, np.float32))
    s.commit("template")
    return repo, layout


def test_template_layout_round_trip(features_repo):
    repo, layout = features_repo
    store = repo.readonly_session("main").store
    assert read_layout(store) == layout
    t2m = zarr.open_array(store, path="t2m", mode="r")
    assert t2m.shape == (1332, 18, 36) and t2m.chunks == (1, 9, 18)
    assert zarr.open_array(store, path="t2m_clim", mode="r").shape == (12, 18, 36)
    ds = open_features(repo.readonly_session("main"), only_ingested=False)
    assert ds["time"].values[0] == np.datetime64("1940-01-01") and ds["time"].values[
        -1
    ] == np.datetime64("2050-12-01")
    assert "cell_area" in ds.coords and ds["t2m"].attrs["standard_name"] == "air_temperature"
    assert open_features(repo.readonly_session("main")).sizes["time"] == 0


def test_layout_compatibility(features_repo):
    _, layout = features_repo
    with pytest.raises(LakeError, match=r"10.0 deg grid, not 5.0 deg"):
        layout.check_compatible(
            FeaturesLayout(ModelGrid(5.0), ModelGrid(5.0).tiling(9, 18, 1), ("t2m",))
        )
    with pytest.raises(LakeError, match="no driver"):
        layout.check_compatible(FeaturesLayout(layout.grid, layout.tiling, ("pr",)))
    with pytest.raises(LakeError, match="outside the features store's time axis"):
        layout.month_index(MonthWindow.parse("2051-01", "2051-01").start)


def test_forked_region_writes_merge_and_touch_only_their_chunks(features_repo):
    repo, layout = features_repo
    s = repo.writable_session("main")
    fork = s.fork()
    jan, feb = MonthWindow.parse("2015-01", "2015-02").months
    a = write_region(fork, "t2m", layout.month_index(jan), np.full((18, 36), 280.0, np.float32))
    b = write_region(
        s.fork() if False else fork,
        "t2m",
        layout.month_index(feb),
        np.full((18, 36), 281.0, np.float32),
    )
    s.merge(merge_forks(a, b))
    write_flags(s.store, layout, [jan, feb], [feb])
    first = s.commit("two months")
    s = repo.writable_session("main")
    fork = s.fork()
    s.merge(
        write_region(fork, "t2m", layout.month_index(feb), np.full((18, 36), 282.0, np.float32))
    )
    second = s.commit("rewrite feb")
    diff = repo.diff(from_snapshot_id=first, to_snapshot_id=second)
    changed = {tuple(c) for c in diff.updated_chunks["/t2m"]}
    assert changed and all(c[0] == layout.month_index(feb) for c in changed)
    store = repo.readonly_session("main").store
    assert [str(m) for m in ingested_months(store, layout)] == ["2015-01", "2015-02"]
    assert zarr.open_array(store, path="era5t", mode="r")[layout.month_index(feb)] == 1
    assert (
        float(zarr.open_array(store, path="t2m", mode="r")[layout.month_index(jan)].mean()) == 280.0
    )


def test_manifests_are_split_by_year_along_time(tmp_path):
    """A unit of work on a year loads that year's chunk references, not the whole store's."""
    repo = Lake(str(tmp_path / "lake")).create_repo("features")
    session = repo.writable_session("main")
    root = zarr.open_group(session.store, mode="w")
    monthly = root.create_array(
        "t2m", shape=(48, 4, 4), chunks=(1, 4, 4), dtype="f4", dimension_names=("time", "y", "x")
    )
    monthly[:30] = np.ones((30, 4, 4), "f4")
    static = root.create_array(
        "area", shape=(40, 4), chunks=(1, 4), dtype="f4", dimension_names=("y", "x")
    )
    static[:] = np.ones((40, 4), "f4")
    info = json.loads(repo.inspect_snapshot(session.commit("w"), pretty=False))
    extents = {
        n["path"]: sorted(ref["extents"][0] for ref in n["manifest_refs"])
        for n in info["nodes"]
        if n["node_type"] == "array"
    }
    m = MANIFEST_SPLIT_MONTHS  # 12: the 30 months written make two full years and a part
    assert extents["/t2m"] == [[0, m], [m, 2 * m], [2 * m, 30]]
    assert extents["/area"] == [[0, 40]]  # no time dimension: one manifest
