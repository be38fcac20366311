"""carbonsink compact: old snapshots and tags expire, their objects go, the tips stay."""

import datetime as dt

import icechunk
import numpy as np
import pytest
import zarr

from carbonsink.errors import LakeError
from carbonsink.lake.lake import Lake
from carbonsink.lake.plan_store import RunLock
from pipelines.cli import main
from pipelines.lake.compact import run_compact


@pytest.fixture
def lake(tmp_path):
    """A features store written twice over the same 4 chunks; the first run is tagged.

    Random values: chunks under 512 bytes would sit inline in the manifest.
    """
    lake = Lake(str(tmp_path / "lake"))
    repo = lake.create_repo("features")
    session = repo.writable_session("main")
    x = zarr.open_group(session.store, mode="w").create_array(
        "x", shape=(4, 512), chunks=(1, 512), dtype="f4", dimension_names=("time", "x")
    )
    x[:] = np.random.default_rng(0).random((4, 512), "f4")
    repo.create_tag("run-first", session.commit("first"))
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="x")[:] = np.full((4, 512), 2, "f4")
    session.commit("second")
    return lake


def values(lake: Lake) -> np.ndarray:
    store = lake.open_repo("features").readonly_session("main").store
    return np.asarray(zarr.open_array(store, path="x", mode="r")[:])


def test_old_history_goes_and_main_stays(lake):
    repo = lake.open_repo("features")
    first = repo.lookup_tag("run-first")
    (features,) = [c for c in run_compact(lake, 0, grace=dt.timedelta(0)) if c.store == "features"]
    assert features.tags == 1 and features.snapshots >= 1
    assert features.chunks == 4 and features.bytes > 0  # the first run's chunks
    assert (values(lake) == 2).all()
    assert next(s.message for s in repo.ancestry(branch="main")) == "second"
    with pytest.raises(icechunk.IcechunkError):
        repo.readonly_session(snapshot_id=first)


def test_young_objects_are_kept_and_recent_history_too(lake):
    (young,) = [c for c in run_compact(lake, 0) if c.store == "features"]
    assert young.tags == 1 and young.chunks == 0  # expired, but younger than the grace
    assert (values(lake) == 2).all()
    repo = lake.open_repo("features")
    repo.create_tag("run-again", repo.lookup_branch("main"))
    (kept,) = [c for c in run_compact(lake, 30, grace=dt.timedelta(0)) if c.store == "features"]
    assert (kept.snapshots, kept.tags, kept.chunks) == (0, 0, 0)
    assert "run-again" in repo.list_tags()


def test_a_busy_lake_is_left_alone(lake):
    busy = pytest.raises(LakeError, match="is busy: backfill run other-run")
    with RunLock(lake, "other-run", "backfill"), busy:
        run_compact(lake, 0, grace=dt.timedelta(0))
    assert "run-first" in lake.open_repo("features").list_tags()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--keep-days", "-1"], "--keep-days must be 0 to 36500"),
        (["--keep-days", "inf"], "--keep-days must be 0 to 36500"),
        (["--keep-days", "soon"], "--keep-days"),
    ],
)
def test_bad_arguments_are_one_line(lake, capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        main(["compact", "--lake", lake.url, *args])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and message in err
    assert "run-first" in lake.open_repo("features").list_tags()


def test_not_a_lake_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["compact", "--lake", str(tmp_path / "nothing")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "is not a carbonsink lake" in err
    assert not (tmp_path / "nothing").exists()


def test_the_command_reports_what_it_freed(lake, capsys):
    main(["compact", "--lake", lake.url, "--keep-days", "0"])
    out = capsys.readouterr()
    assert "features: " in out.err and "tag(s) expired" in out.err
    assert out.out.startswith("compacted ") and "GB freed" in out.out
