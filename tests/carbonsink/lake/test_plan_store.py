"""Recorded plans and the lake's run lock."""

import multiprocessing as mp
import subprocess
import sys

import pytest

from carbonsink.errors import LakeError
from carbonsink.lake import plan_store
from carbonsink.lake.lake import Lake
from carbonsink.lake.plan_store import (
    RunLock,
    make_plan,
    mark_done,
    mark_undone,
    read_plans,
    record_plan,
)
from carbonsink.timeutil import MonthWindow


def new_lake(path) -> Lake:
    lake = Lake(str(path))
    lake.create()
    return lake


PARTS = [MonthWindow.parse("2015-01", "2015-12"), MonthWindow.parse("2016-01", "2016-06")]


def test_plans_are_deterministic_and_ingest_comes_first():
    a = make_plan("backfill", {"start": "2015-01", "end": "2016-06"}, PARTS, bands=2)
    b = make_plan("backfill", {"end": "2016-06", "start": "2015-01"}, PARTS, bands=2)
    c = make_plan("backfill", {"start": "2015-01", "end": "2016-07"}, PARTS, bands=2)
    assert a == b and a.id != c.id
    assert [u.id for u in a.units] == [
        "2015-01..2015-12/ingest",
        "2016-01..2016-06/ingest",
        "2015-01..2015-12/map/band-1-of-2",
        "2015-01..2015-12/map/band-2-of-2",
        "2015-01..2015-12/publish",
        "2016-01..2016-06/map/band-1-of-2",
        "2016-01..2016-06/map/band-2-of-2",
        "2016-01..2016-06/publish",
    ]
    assert [u.band for u in a.units if u.stage == "map"] == [0, 1, 0, 1]


def test_undone_units_are_redone(tmp_path):
    lake = new_lake(tmp_path / "lake")
    plan = make_plan("backfill", {"start": "2015-01"}, PARTS, bands=2)
    record_plan(lake, plan)
    for u in plan.units[:4]:
        mark_done(lake, plan, u)
    mark_undone(lake, plan, plan.units[2:4])
    assert sorted(record_plan(lake, plan)) == sorted(u.id for u in plan.units[:2])


def test_recorded_plan_resumes_with_its_done_units(tmp_path):
    lake = new_lake(tmp_path / "lake")
    plan = make_plan("backfill", {"start": "2015-01"}, PARTS)
    assert record_plan(lake, plan) == {}
    mark_done(lake, plan, plan.units[0], run="r1")
    again = record_plan(lake, plan)  # the same command run again
    assert list(again) == [plan.units[0].id] and again[plan.units[0].id]["run"] == "r1"
    plans, lock = read_plans(lake)
    assert [p.id for p in plans] == [plan.id] and lock is None
    assert not plans[0].complete
    for u in plan.units[1:]:
        mark_done(lake, plan, u)
    assert read_plans(lake)[0][0].complete


def test_a_live_lock_refuses_a_second_driver_and_is_released(tmp_path):
    lake = new_lake(tmp_path / "lake")
    with RunLock(lake, "first", "backfill"):
        assert read_plans(lake)[1]["owner"] == "first"
        with (
            pytest.raises(LakeError, match=r"is busy: backfill run first \(pid"),
            RunLock(lake, "second", "backfill"),
        ):
            pass
    assert read_plans(lake)[1] is None
    with RunLock(lake, "second", "backfill"):
        assert read_plans(lake)[1]["owner"] == "second"


def die_holding_the_lock(lake: Lake, owner: str, host: str = "") -> None:
    """A process that takes the run lock and dies without releasing it (as kill -9 does)."""
    code = (
        "import os, sys; from carbonsink.lake.lake import Lake; "
        "from carbonsink.lake.plan_store import RunLock; "
        "lock = RunLock(Lake(sys.argv[1]), sys.argv[2], 'backfill'); "
        "lock.record['host'] = sys.argv[3] or lock.record['host']; "
        "lock.__enter__(); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code, lake.url, owner, host], check=True)


def test_a_dead_holders_lock_is_taken_over(tmp_path, monkeypatch):
    lake = new_lake(tmp_path / "lake")
    die_holding_the_lock(lake, "dead")  # its pid no longer runs
    assert read_plans(lake)[1]["owner"] == "dead"
    with RunLock(lake, "next", "backfill"):
        assert read_plans(lake)[1]["owner"] == "next"
    # On another host only the heartbeat tells: a silent holder is stale after STALE_S.
    die_holding_the_lock(lake, "far", host="elsewhere")
    with pytest.raises(LakeError, match="is busy"), RunLock(lake, "x", "backfill"):
        pass
    monkeypatch.setattr(plan_store, "STALE_S", -1.0)
    with RunLock(lake, "after", "backfill"):
        assert read_plans(lake)[1]["owner"] == "after"


def _contend(url: str, name: str, queue, refused) -> None:
    try:
        with RunLock(Lake(url), name, "backfill"):
            queue.put(("held", name))
            # Hold until the other driver has tried, however slowly it started.
            refused.wait(60)
    except LakeError as exc:
        queue.put(("refused", str(exc)))
        refused.set()


def test_two_drivers_racing_for_the_lock_one_wins(tmp_path):
    url = str(tmp_path / "lake")
    record_plan(new_lake(url), make_plan("backfill", {}, PARTS))  # the store exists
    ctx = mp.get_context("spawn")
    queue, refused = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_contend, args=(url, f"d{k}", queue, refused)) for k in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(90)
    results = sorted(queue.get(timeout=5)[0] for _ in procs)
    assert results == ["held", "refused"]


def test_a_plans_store_created_but_not_yet_written_reads_as_empty(tmp_path):
    # Another driver has created the store and not committed its first change yet.
    lake = new_lake(tmp_path / "lake")
    lake.create_repo(plan_store.STORE)
    assert read_plans(lake) == ([], None)
