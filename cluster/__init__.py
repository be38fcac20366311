"""Engines: Dask client factory (and, later, Ray and Ray Serve)."""
