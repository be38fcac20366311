"""Single stages, one module per command and named after it.

Each reads its settings, opens one store's transaction, calls the library (on Dask or
through Ray Serve) and publishes.
"""
