"""carbonsink: near-real-time land and ocean CO2 sinks and the global carbon budget.

The public API is what this module exports (``__all__``): open a lake's outputs with
:func:`open_lake` and read them as xarray and pandas objects::

    import carbonsink

    lake = carbonsink.open_lake("output/lake")
    june = lake.sinkmap().sel(time="2024-06")
    (june.land_flux * june.cell_area).sum(("lat", "lon"))  # kg C s-1

The ``carbonsink`` package is the library layer: pure xarray, numpy and torch code that
runs without any cluster. Engines live in ``cluster`` and orchestration in ``pipelines``;
the modules under ``carbonsink`` are the library's own, and may change between versions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from carbonsink._version import __version__

if TYPE_CHECKING:
    from carbonsink._outputs import TABLES, LakeOutputs, open_lake

__all__ = ["TABLES", "LakeOutputs", "__version__", "open_lake"]

_LAZY = set(__all__) - {"__version__"}


def __getattr__(name: str) -> Any:
    # The reader pulls in xarray, zarr and icechunk: imported on first use, so that
    # `carbonsink --version` and the command line's start stay quick.
    if name in _LAZY:
        from carbonsink import _outputs

        return getattr(_outputs, name)
    raise AttributeError(f"module 'carbonsink' has no attribute {name!r}")
