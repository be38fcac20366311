"""The CronJob's command and the RayJob's entrypoint, run for real on this machine.

Each runs as the manifests say, with the environment the pod would get (the ConfigMap, the
container's env, the RayJob's runtime env), against a local Dask and Ray. What a cluster
would differ in is replaced, and only that: the lake and source (a copy of the tiny lake
instead of the buckets), the grid (the tiny lake's settings file), the window (a month
instead of the decade), the GPU request (CPU replicas) and the pod's core counts.
"""

import importlib
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
import zarr

from carbonsink.lake.features_store import era5t_months, open_published_features
from carbonsink.lake.lake import Lake
from carbonsink.lake.plan_store import read_plans
from carbonsink.lake.table_store import read_table
from carbonsink.reference.noaa import GTC_PER_PPM, annual_growth
from pipelines.infer import mapped_months
from tests.infra.conftest import pod_specs, render
from tests.tiny_lake import settings

pytestmark = pytest.mark.integration


def pod_env(docs: list[dict], kind: str, where: str) -> dict[str, str]:
    """The environment a container of ``kind``'s ``where`` pod starts with."""
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    pod = dict(pod_specs(next(d for d in docs if d["kind"] == kind)))[where]
    (container,) = pod["containers"]
    env = {}
    for source in container.get("envFrom", []):
        assert source["configMapRef"]["name"] == config["metadata"]["name"]
        env.update(config["data"])
    env.update({e["name"]: e["value"] for e in container.get("env", [])})
    return env


def run(argv: list[str], env: dict[str, str], config: Path, log: Path) -> str:
    """Run ``argv`` as the pod would, with this environment's ``carbonsink`` on PATH."""
    full = {
        **os.environ, **env,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "CARBONSINK_CONFIG": str(config),
    }  # fmt: skip
    with open(log, "w") as out:
        rc = subprocess.run(argv, env=full, stdout=out, stderr=subprocess.STDOUT).returncode
    text = log.read_text()
    assert rc == 0, text[-3000:]
    return text


def tiny_config(root: Path, path: Path, **kw) -> Path:
    s = settings(root, budget={"reference_start": 2016, "reference_end": 2016}, **kw)
    path.write_text(yaml.safe_dump(s.model_dump(mode="json", exclude_none=True)))
    return path


def test_rayjob_entrypoint_backfills_through_local_dask_and_ray(
    mapped_lake, monthly_store, dask_client, ray_cluster, tmp_path
):
    import ray

    root = tmp_path / "lake"
    shutil.copytree(mapped_lake, root)
    job = next(d for d in render("prod") if d["kind"] == "RayJob")
    env = pod_env([*render("prod")], "RayJob", "head")
    env.update(yaml.safe_load(job["spec"]["runtimeEnvYAML"])["env_vars"])
    assert env["CARBONSINK_RAY__ADDRESS"] == "auto" and env["CARBONSINK_START"] == "2015-01"
    env.update({
        # KubeRay points the entrypoint's `auto` at the job's cluster with RAY_ADDRESS.
        "RAY_ADDRESS": ray.get_runtime_context().gcs_address,
        "CARBONSINK_DASK__ADDRESS": dask_client.scheduler.address,
        "CARBONSINK_LAKE": str(root), "CARBONSINK_SOURCE": str(monthly_store),
        "CARBONSINK_START": "2016-12", "CARBONSINK_END": "2016-12",
        "CARBONSINK_SERVE__NUM_GPUS": "0", "CARBONSINK_SERVE__NUM_CPUS": "1",
        "CARBONSINK_SERVE__HTTP_PORT": str(ray_cluster["http_port"]),
    })  # fmt: skip
    config = tiny_config(root, tmp_path / "settings.yaml")
    out = run(shlex.split(job["spec"]["entrypoint"]), env, config, tmp_path / "job.log")
    assert "0 unit(s) done before, 5 run now" in out  # ingest, 3 bands, publish
    plans, lock = read_plans(Lake(str(root)))
    assert lock is None and plans[-1].complete and plans[-1].args["start"] == "2016-12"
    assert pd.Period("2016-12", "M") in mapped_months(Lake(str(root)))


def test_cronjob_command_finalises_era5t_months_with_in_pod_dask_and_ray(
    mapped_lake, monthly_store, tmp_path
):
    root, source = tmp_path / "lake", tmp_path / "source.zarr"
    shutil.copytree(mapped_lake, root)
    shutil.copytree(monthly_store, source)
    # The source's two ERA5T months (2016-11, 2016-12) have become final ERA5.
    zarr.open_group(str(source), mode="r+").attrs["valid_time_stop"] = "2016-12-31"
    zarr.consolidate_metadata(str(source))
    docs = render("prod")
    cron = next(d for d in docs if d["kind"] == "CronJob")
    (container,) = dict(pod_specs(cron))["jobTemplate"]["containers"]
    env = pod_env(docs, "CronJob", "jobTemplate")
    assert env["CARBONSINK_DASK__ADDRESS"] == ""  # Dask and Ray inside the pod
    env.update({
        "CARBONSINK_LAKE": str(root), "CARBONSINK_SOURCE": str(source),
        "CARBONSINK_DASK__N_WORKERS": "2", "CARBONSINK_RAY__NUM_CPUS": "2",
    })  # fmt: skip
    config = tiny_config(root, tmp_path / "settings.yaml", serve={"in_flight": 8})
    out = run(container["command"], env, config, tmp_path / "nrt.log")
    assert "nrt 2016-01..2016-12: ingested 2, mapped 2 month(s)" in out
    lk = Lake(str(root))
    features, layout = open_published_features(lk)
    assert len(era5t_months(features.store, layout)) == 0
    store = lk.open_repo("budget").readonly_session("main").store  # type: ignore[union-attr]
    trailing, attrs = read_table(store, "budget_12m")
    assert trailing.index.name == "window_end" and str(trailing.index[-1]) == "2016-12"
    last = trailing.iloc[-1]
    growth = annual_growth("gl").at[2016, "growth"]
    assert pytest.approx(growth * GTC_PER_PPM, abs=0.011 * GTC_PER_PPM) == last.GATM
    gap = last.EFOS + last.ELUC - (last.GATM + last.SOCEAN + last.SLAND + last.BIM)
    assert abs(gap) < 1e-9
    annual, _ = read_table(store, "budget")
    assert pytest.approx(annual.at[2016, "SLAND"]) == last.SLAND  # December window = the year
    assert "12-month" in attrs["gatm_12m"]
    assert mapped_months(lk) >= set(pd.period_range("2016-01", "2016-12", freq="M"))
    # The next day's run finds nothing new and publishes nothing.
    tip = lk.open_repo("budget").lookup_branch("main")  # type: ignore[union-attr]
    out = run(container["command"], env, config, tmp_path / "nrt-again.log")
    assert "ingested 0, mapped 0 month(s)" in out
    assert lk.open_repo("budget").lookup_branch("main") == tip  # type: ignore[union-attr]


def test_rayservice_import_path_builds_the_serve_application(trained, lake):
    from ray.serve import Application

    service = next(d for d in render("prod") if d["kind"] == "RayService")
    (app,) = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"]
    module, name = app["import_path"].split(":")
    builder = getattr(importlib.import_module(module), name)
    built = builder({**app["args"], "lake": str(lake)})
    assert isinstance(built, Application)
