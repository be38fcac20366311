"""Engines: the Dask client factory, the Ray connector and the Serve application."""
