"""Ray connectors: a local instance, an address, or a KubeRay cluster by name."""

import pytest

from cluster.ray import ray_address
from cluster.settings import RaySettings


def test_kuberay_clusters_are_reached_through_their_head_service():
    assert ray_address(RaySettings()) is None  # local
    assert ray_address(RaySettings(address="auto")) == "auto"  # inside a RayJob
    assert ray_address(RaySettings(kuberay_cluster="carbonsink-serve")) == (
        "ray://carbonsink-serve-head-svc:10001"
    )
    assert ray_address(RaySettings(kuberay_cluster="rc", namespace="science")) == (
        "ray://rc-head-svc.science.svc.cluster.local:10001"
    )


def test_settings_name_one_place_for_ray():
    with pytest.raises(ValueError, match=r"ray.address and ray.kuberay_cluster both say"):
        RaySettings(address="auto", kuberay_cluster="rc")
