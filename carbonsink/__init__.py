"""carbonsink: near-real-time land and ocean CO2 sinks and the global carbon budget.

The ``carbonsink`` package is the library layer: pure xarray, numpy and torch code that
runs without any cluster. Engines live in ``cluster`` and orchestration in ``pipelines``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("carbonsink")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
