"""The installed carbonsink's version.

A module of its own, so that library modules can name it in their outputs without
importing the package's public API (which would tie them into an import cycle).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("carbonsink")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
