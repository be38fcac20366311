"""The Kubernetes manifests, offline: rendered by kustomize, validated against the API's
schemas (strict) and the operators' CRDs, and held to the security rules."""

import copy
import hashlib
import importlib
import re
from functools import cache

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.infra.manifests import INFRA, pod_specs, render

#: The Kubernetes release the core resources are validated for.
KUBERNETES = "1.33.0"
CORE_GROUPS = {"v1", "batch/v1", "rbac.authorization.k8s.io/v1"}
IMAGE = re.compile(r"^ghcr\.io/carbonsink/carbonsink:\d+\.\d+\.\d+-(cpu|cuda)$")


def test_crds_are_the_pinned_upstream_copies():
    listed = re.findall(r"^([0-9a-f]{64})  (\S+)$", (INFRA / "crds/README.md").read_text(), re.M)
    assert len(listed) == 7
    for digest, path in listed:
        assert hashlib.sha256((INFRA / "crds" / path).read_bytes()).hexdigest() == digest, path


@cache
def crd_schemas() -> dict[tuple[str, str], dict]:
    """``{(apiVersion, kind): openAPIV3Schema}`` of every served version of every CRD."""
    out = {}
    for path in sorted((INFRA / "crds").glob("*/*.yaml")):
        crd = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for v in crd["spec"]["versions"]:
            if v.get("served"):
                out[(f"{group}/{v['name']}", kind)] = v["schema"]["openAPIV3Schema"]
    return out


def crd_errors(doc: dict) -> list[str]:
    schema = crd_schemas()[(doc["apiVersion"], doc["kind"])]
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]


def test_overlays_render_every_resource_into_their_namespace(rendered):
    overlay, docs = rendered
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
    namespace = "carbonsink-dev" if overlay == "dev" else "carbonsink"
    assert kinds == sorted([
        "ConfigMap/carbonsink-settings", "CronJob/carbonsink-nrt", "DaskCluster/carbonsink-dask",
        f"Namespace/{namespace}", "RayJob/carbonsink-backfill", "RayService/carbonsink-serve",
        "Role/carbonsink-dask-clusters", "RoleBinding/carbonsink-dask-clusters",
        "ServiceAccount/carbonsink",
    ])  # fmt: skip
    for d in docs:
        if d["kind"] == "Namespace":  # the overlay's own, restricted by Pod Security admission
            assert d["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
            continue
        assert d["metadata"]["namespace"] == namespace, d["kind"]
        assert d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "carbonsink"
    binding = next(d for d in docs if d["kind"] == "RoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "carbonsink", "namespace": namespace}
    ]


def test_core_resources_validate_strictly(rendered):
    _, docs = rendered
    core = [d for d in docs if d["apiVersion"] in CORE_GROUPS]
    assert len(core) == 6
    for d in core:
        kubernetes_validate.validate(d, KUBERNETES, strict=True)
    # Strict mode catches what the API server would reject or silently drop.
    bad = copy.deepcopy(next(d for d in core if d["kind"] == "CronJob"))
    bad["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["commands"] = ["x"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES, strict=True)


def test_custom_resources_validate_against_the_pinned_crds(rendered):
    _, docs = rendered
    custom = [d for d in docs if d["apiVersion"] not in CORE_GROUPS]
    assert sorted(d["kind"] for d in custom) == ["DaskCluster", "RayJob", "RayService"]
    for d in custom:
        assert crd_errors(d) == [], d["kind"]
    # The Dask CRD's trap: an integer quantity is invalid there.
    bad = copy.deepcopy(next(d for d in custom if d["kind"] == "DaskCluster"))
    bad["spec"]["worker"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = 4
    assert any("limits/cpu" in e for e in crd_errors(bad))
    bad = copy.deepcopy(next(d for d in custom if d["kind"] == "RayService"))
    del bad["spec"]["rayClusterConfig"]["headGroupSpec"]
    assert any("headGroupSpec" in e for e in crd_errors(bad))


def test_every_pod_is_locked_down_and_bounded(rendered):
    _, docs = rendered
    pods = [(d["kind"], where, spec) for d in docs for where, spec in pod_specs(d)]
    assert (
        len(pods) == 8
    )  # dask worker + scheduler, serve head + gpu, job head + gpu + submitter, nrt
    for kind, where, pod in pods:
        at = f"{kind}/{where}"
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] >= 10000, at
        assert psc["seccompProfile"]["type"] == "RuntimeDefault", at
        assert pod["serviceAccountName"] == "carbonsink", at
        assert pod["automountServiceAccountToken"] is False, at
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, at
            assert sc["readOnlyRootFilesystem"] is True, at
            assert sc["capabilities"]["drop"] == ["ALL"], at
            assert "privileged" not in sc, at
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][bound]), (at, bound)
            assert IMAGE.match(c["image"]), (at, c["image"])
            # A read-only root needs somewhere to write: /tmp is an emptyDir everywhere.
            assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"]), at
        # GPU pods ask for a GPU and run the CUDA image; the others run the CPU one.
        gpu = any("nvidia.com/gpu" in c["resources"]["limits"] for c in pod["containers"])
        assert gpu == (where == "gpu"), at
        assert all(c["image"].endswith("-cuda") == gpu for c in pod["containers"]), at


def test_credentials_are_never_inline(rendered):
    overlay, docs = rendered
    secretish = re.compile(r"SECRET|PASSWORD|TOKEN|ACCESS_KEY|CREDENTIALS$", re.I)
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    assert not [k for k in config["data"] if secretish.search(k)]
    assert not any(d["kind"] == "Secret" for d in docs)
    for d in docs:
        for _, pod in pod_specs(d):
            for c in pod["containers"]:
                for e in c.get("env", []):
                    assert not secretish.search(e["name"]), (d["kind"], e["name"])
            secrets = [v for v in pod["volumes"] if "secret" in v]
            # At most the optional object-store secret, made outside the manifests.
            assert all(v["secret"] == {"secretName": "carbonsink-object-store", "optional": True}
                       for v in secrets)  # fmt: skip
    account = next(d for d in docs if d["kind"] == "ServiceAccount")
    identity = account["metadata"].get("annotations", {}).get("eks.amazonaws.com/role-arn")
    assert (identity is not None) == (overlay == "prod")


def test_role_is_least_privilege(rendered):
    _, docs = rendered
    role = next(d for d in docs if d["kind"] == "Role")
    verbs = {(g, r): set(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"]
             for r in rule["resources"]}  # fmt: skip
    assert ("", "secrets") not in verbs and not any("*" in v for v in verbs.values())
    assert verbs[("", "pods")] == {"get", "list", "watch"}
    assert not any(d["kind"].startswith("Cluster") for d in docs)


def test_serve_config_parses_and_its_import_path_imports(rendered):
    from ray.serve.schema import ServeDeploySchema

    _, docs = rendered
    service = next(d for d in docs if d["kind"] == "RayService")
    config = ServeDeploySchema.model_validate(yaml.safe_load(service["spec"]["serveConfigV2"]))
    (app,) = config.applications
    module, name = app.import_path.split(":")
    assert callable(getattr(importlib.import_module(module), name))
    assert [d.name for d in app.deployments] == ["emulator"]
    assert app.deployments[0].autoscaling_config["max_replicas"] >= 1


def test_dev_overlay_shrinks_the_footprint():
    dev, prod = ({d["kind"]: d for d in render(o)} for o in ("dev", "prod"))
    assert (
        dev["DaskCluster"]["spec"]["worker"]["replicas"]
        < prod["DaskCluster"]["spec"]["worker"]["replicas"]
    )
    assert (
        dev["CronJob"]["spec"].get("suspend") is True and "suspend" not in prod["CronJob"]["spec"]
    )
    window = yaml.safe_load(dev["RayJob"]["spec"]["runtimeEnvYAML"])["env_vars"]
    assert (window["CARBONSINK_START"], window["CARBONSINK_END"]) == ("2024-01", "2024-12")
