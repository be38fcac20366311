"""labels -> train -> evaluate on a real Dask cluster and a real Icechunk lake (tiny grid)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

from carbonsink.emulator.checkpoint import list_checkpoints, load_checkpoint
from carbonsink.errors import CarbonsinkError, ConfigError, LakeError, SourceError
from carbonsink.grid import ModelGrid
from carbonsink.lake.flux_store import member_months, members, open_member
from carbonsink.lake.lake import Lake
from pipelines.stages.evaluate import run_evaluate
from pipelines.stages.labels import run_labels
from pipelines.stages.train import run_train
from tests.target_files import write_gobm, write_trendy
from tests.tiny_lake import settings

pytestmark = pytest.mark.integration


def test_labels_cover_months_up_to_the_cut_off(trained, lake):
    labels, _ = trained
    assert labels.members == ["ref-moderate", "ref-dry", "ref-warm"]
    assert labels.months[0] == pd.Period("2015-01", "M") and labels.months[-1] == pd.Period(
        "2016-06", "M"
    )
    session = Lake(str(lake)).open_repo("labels").readonly_session("main")
    assert members(session.store) == sorted(labels.members)
    ds = open_member(session, "ref-moderate")
    assert ds.sizes["time"] == 18 and ds["land_flux"].attrs["positive"] == "down"
    land = ds["land_flux"].values
    ocean = ds["ocean_flux"].values
    lf = zarr.open_array(
        Lake(str(lake)).open_repo("features").readonly_session("main").store,
        path="land_fraction",
    )[:]
    assert np.isnan(land[:, lf == 0]).all() and np.isnan(ocean[:, lf == 1]).all()
    assert np.isfinite(land[:, lf > 0.5]).mean() > 0.9
    # Ocean uptake dominates at the global scale; the members differ.
    area = ModelGrid(4.0).cell_area
    totals = {
        m: float(np.nansum(open_member(session, m)["ocean_flux"].values * area))
        for m in labels.members
    }
    assert all(t > 0 for t in totals.values())
    assert len({round(t, 3) for t in totals.values()}) == 3


def test_relabelling_reproduces_identical_values(trained, lake, dask_client):
    repo = Lake(str(lake)).open_repo("labels")
    before = repo.lookup_branch("main")
    run_labels(settings(lake, labels={"members": ["ref-dry"]}), dask_client)
    after = repo.lookup_branch("main")
    assert after != before
    for f in ("land_flux", "ocean_flux"):
        old = open_member(repo.readonly_session(snapshot_id=before), "ref-dry")[f].values
        new = open_member(repo.readonly_session(snapshot_id=after), "ref-dry")[f].values
        np.testing.assert_array_equal(old, new)


def test_train_publishes_both_variants_with_metadata(trained, lake):
    session = Lake(str(lake)).open_repo("models").readonly_session("main")
    found = list_checkpoints(session.store)
    assert len(found) == 6 and {v for v, _ in found} == {"mean-teacher", "supervised"}
    emu = load_checkpoint(session.store, "ref-warm", grid=ModelGrid(4.0))
    meta = emu.metadata
    assert meta.training["labelled_window"] == "2015-01..2015-12"
    assert meta.training["unlabelled_window"] == "2016-07..2016-12"
    assert meta.training["holdout"] == "2016-01..2016-06"
    assert "co2" in meta.channels and "sst_anom" in meta.channels
    sup = load_checkpoint(session.store, "ref-warm", "supervised").metadata
    assert sup.training["unmember_months"] == 0


def test_training_is_deterministic(trained, lake, dask_client, tmp_path):
    session = Lake(str(lake)).open_repo("models").readonly_session("main")
    first = load_checkpoint(session.store, "ref-dry").state()
    run_train(settings(lake, emulator={"members": ["ref-dry"], "compare_supervised": False}),
              dask_client)  # fmt: skip
    session = Lake(str(lake)).open_repo("models").readonly_session("main")
    again = load_checkpoint(session.store, "ref-dry").state()
    for k, v in first.items():
        np.testing.assert_array_equal(v, again[k])


def test_evaluate_writes_the_skill_report(trained, lake):
    report = run_evaluate(settings(lake))
    names = sorted(Path(f.removeprefix("file://")).name for f in report.files)
    assert names == ["map.png", "scatter.png", "skill.json", "skill.md"]
    for f in report.files:
        assert Path(f.removeprefix("file://")).stat().st_size > 100
    skill = json.loads(Path(report.files[0].removeprefix("file://")).read_text())["skill"]
    assert set(skill) == {"mean-teacher", "supervised"}
    med = skill["mean-teacher"]["ensemble-median"]["land_flux"]
    assert med["years"] == [2016] and med["cells"] > 0
    assert np.isfinite(med["mean_relative_error"])
    session = Lake(str(lake)).open_repo("models").readonly_session("main")
    meta = load_checkpoint(session.store, "ref-moderate").metadata
    assert meta.metrics["holdout"] == "2016-01..2016-06"
    assert "r2_median" in meta.metrics["ocean_flux"]


def test_bad_requests_fail_cleanly(trained, lake, dask_client, tmp_path):
    repo = Lake(str(lake)).open_repo("models")
    before = repo.lookup_branch("main")
    with pytest.raises(ConfigError, match="no labels for member"):
        run_train(settings(lake, emulator={"members": ["nope"]}), dask_client)
    with pytest.raises(ConfigError, match="no labelled month outside the held-out window"):
        run_train(settings(lake, emulator={"holdout_start": "2015-01"}), dask_client)
    with pytest.raises(ConfigError, match="no labels for held-out month"):
        run_evaluate(settings(lake, emulator={"holdout_end": "2016-12"}))
    with pytest.raises(LakeError, match="no lake at"):
        run_labels(settings(tmp_path / "none"), dask_client)
    assert repo.lookup_branch("main") == before
    assert set(repo.list_branches()) == {"main"}


# -- TRENDY / GOBM import ---------------------------------------------------------------


def test_import_trendy_and_gobm_files(trained, lake, dask_client, tmp_path):
    nbp = write_trendy(tmp_path / "CLASSIC_S2_nbp.nc")
    fg = write_gobm(tmp_path / "NorESM_fgco2.nc")
    s = settings(lake, labels={"nbp": nbp, "fgco2": fg, "member": "CLASSIC+NorESM"})
    report = run_labels(s, dask_client)
    assert report.members == ["CLASSIC+NorESM"]
    session = Lake(str(lake)).open_repo("labels").readonly_session("main")
    ds = open_member(session, "CLASSIC+NorESM")
    assert ds.sizes["time"] == 18  # the labels cut-off still applies
    lf = zarr.open_array(
        Lake(str(lake)).open_repo("features").readonly_session("main").store,
        path="land_fraction",
    )[:]
    land = ds["land_flux"].isel(time=0).values
    ocean = ds["ocean_flux"].isel(time=0).values
    # A uniform field stays uniform per m2 of land / ocean; north of 60N was missing.
    # (cells are 4 deg: the one centred on 60N is half valid, the ones north of it empty)
    south = ds["lat"].values <= 60
    full_land = (lf == 1) & south[:, None]
    np.testing.assert_allclose(land[full_land], 2e-9, rtol=1e-5)
    assert np.isnan(land[~south]).all()
    full_ocean = lf == 0
    np.testing.assert_allclose(ocean[full_ocean], 1e-7 * 12.011e-3, rtol=1e-5)
    # The 365_day time axis maps month by month; the series grows as written.
    assert float(ds["land_flux"].isel(time=17).values[full_land][0]) == pytest.approx(
        2e-9 * (1 + 17 / 24), rel=1e-5
    )
    flayout_months = member_months(session.store, _layout(session), "CLASSIC+NorESM")
    assert len(flayout_months) == 18


def _layout(session):
    from carbonsink.lake.features_store import read_attrs
    from carbonsink.lake.flux_store import FluxLayout

    return FluxLayout.from_attrs(read_attrs(session.store))


def test_bad_target_files_are_refused(trained, lake, dask_client, tmp_path):
    repo = Lake(str(lake)).open_repo("labels")
    before = repo.lookup_branch("main")
    cases = [
        (write_trendy(tmp_path / "a.nc", units="g m-2 day-1"), "has units 'g m-2 day-1'"),
        (write_trendy(tmp_path / "b.nc", declare_fill=False), "beyond any real flux"),
        (str(tmp_path / "missing.nc"), "does not exist"),
    ]
    for path, msg in cases:
        with pytest.raises(SourceError, match=msg):
            run_labels(settings(lake, labels={"nbp": path, "member": "X"}), dask_client)
    with pytest.raises(ConfigError, match="need a member name"):
        run_labels(settings(lake, labels={"nbp": cases[0][0]}), dask_client)
    assert repo.lookup_branch("main") == before
    assert issubclass(SourceError, CarbonsinkError)
