"""Synthetic ERA5-like sample data in the ARCO-ERA5 layout."""
