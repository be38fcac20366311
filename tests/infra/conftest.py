"""The project's Kubernetes manifests, rendered by the real kustomize for each overlay."""

import pytest

from tests.infra.manifests import OVERLAYS, render


@pytest.fixture(scope="session", params=OVERLAYS)
def rendered(request) -> tuple[str, list[dict]]:
    """(overlay, its rendered resources)."""
    return request.param, render(request.param)
