"""Durable branches: a backfill partition's commits outlive the driver, publish by CAS."""

import icechunk
import numpy as np
import pytest
import zarr

from carbonsink.errors import LakeError
from carbonsink.lake.lake import Lake
from pipelines.lake.transaction import DurableBranch, StoreTransaction


def write(session, value: float, message: str) -> None:
    a = zarr.open_array(session.store, path="x", mode="a", shape=(4,), dtype="f4", chunks=(1,))
    a[int(value) % 4] = value
    session.commit(message)


def read(lake: Lake) -> np.ndarray:
    store = lake.open_repo("sinkmap").readonly_session("main").store
    return np.asarray(zarr.open_array(store, path="x", mode="r")[:])


@pytest.fixture
def lake(tmp_path):
    lk = Lake(str(tmp_path / "lake"))
    lk.create()
    lk.create_repo("sinkmap")
    write(lk.open_repo("sinkmap").writable_session("main"), 0.0, "base")
    return lk


def test_commits_stay_on_the_branch_until_published_and_survive_a_new_process(lake):
    branch = DurableBranch(lake, "sinkmap", "plan-a-2016")
    assert not branch.exists()
    write(branch.session(), 1.0, "band 1")
    # A new driver (a new object) finds the branch and goes on from its tip.
    again = DurableBranch(lake, "sinkmap", "plan-a-2016")
    assert again.exists() and not again.published() and not again.behind()
    write(again.session(), 2.0, "band 2")
    assert read(lake)[1:3].tolist() == [0.0, 0.0]  # readers see nothing yet
    tip = again.publish("run-plan-a-2016")
    assert read(lake)[1:3].tolist() == [1.0, 2.0]
    assert again.published() and lake.open_repo("sinkmap").lookup_tag("run-plan-a-2016") == tip
    again.publish("run-plan-a-2016")  # published twice (a resumed publish unit): no change
    again.drop()
    assert not again.exists() and read(lake)[1:3].tolist() == [1.0, 2.0]


def test_a_branch_that_main_moved_past_refuses_to_publish(lake):
    branch = DurableBranch(lake, "sinkmap", "plan-b-2016")
    write(branch.session(), 1.0, "band 1")
    write(lake.open_repo("sinkmap").writable_session("main"), 3.0, "another run")
    assert branch.behind() and not branch.published()
    with pytest.raises(LakeError, match="another run published to the sinkmap store"):
        branch.publish("run-plan-b-2016")
    assert read(lake).tolist() == [0.0, 0.0, 0.0, 3.0]  # the other run's work is kept


def test_a_store_that_is_not_there_cannot_be_branched(lake):
    with pytest.raises(LakeError, match="no budget store"):
        DurableBranch(lake, "budget", "x")


def test_a_storage_failure_inside_a_transaction_is_one_clean_line(lake):
    tip = lake.open_repo("sinkmap").lookup_branch("main")
    with pytest.raises(LakeError) as info, StoreTransaction(lake, "sinkmap", "r1") as tx:
        write(tx.session(), 2.0, "work")
        # What Icechunk raises when the object store stays away past its retries.
        raise icechunk.IcechunkError("error getting object from object store dispatch failure")
    message = str(info.value)
    assert "\n" not in message and "nothing was published: run the same command again" in message
    assert lake.open_repo("sinkmap").lookup_branch("main") == tip
    assert lake.open_repo("sinkmap").list_branches() == {"main"}  # the run's branch is gone
