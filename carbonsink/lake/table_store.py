"""Small tables (the budget, regional sums) in an Icechunk store, and their file exports.

A table is a Zarr group: an ``index`` array (years, or months as ``YYYYMM``), one float64
array per numeric column, one int32 array of codes per text column (its categories, and the
provenance, in the group's attributes: long tables repeat a few names thousands of times). Stored in
the lake like everything else, a table is written on a run's branch and published with the
run, so a reader never sees a half-written budget. Parquet and CSV copies are exports, made
from the published table.
"""

from __future__ import annotations

import io
import json
from typing import Any

import icechunk
import numpy as np
import pandas as pd
import zarr


def _index_values(index: pd.Index) -> tuple[np.ndarray, str]:
    if isinstance(index, pd.PeriodIndex):
        return np.array([p.year * 100 + p.month for p in index], dtype=np.int32), "month"
    return np.asarray(index, dtype=np.int32), str(index.name or "year")


def write_table(
    store: icechunk.IcechunkStore, name: str, frame: pd.DataFrame, attrs: dict[str, Any]
) -> None:
    """Write (or replace) table ``name``; ``attrs`` (JSON-safe) record its provenance."""
    root = zarr.open_group(store, mode="a", zarr_format=3)
    if name in root:
        del root[name]
    g = root.create_group(name)
    values, kind = _index_values(frame.index)
    g.create_array("index", data=values, chunks=(max(1, len(values)),))
    numeric: list[str] = []
    categorical: dict[str, list[str]] = {}
    for c in frame.columns:
        col = frame[c]
        chunks = (max(1, len(col)),)
        if pd.api.types.is_numeric_dtype(col):
            g.create_array(f"col{len(numeric)}", data=col.to_numpy(np.float64), chunks=chunks)
            numeric.append(str(c))
        else:
            codes, categories = pd.factorize(col.astype(str))
            g.create_array(f"txt{len(categorical)}", data=codes.astype(np.int32), chunks=chunks)
            categorical[str(c)] = [str(v) for v in categories]
    g.attrs.update(
        json.loads(
            json.dumps(
                {
                    "index": kind,
                    "index_name": str(frame.index.name or kind),
                    "numeric": numeric,
                    "categorical": categorical,
                    "columns": [str(c) for c in frame.columns],
                    **attrs,
                },
                default=str,
            )
        )
    )


def read_table(store: icechunk.IcechunkStore, name: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A table and its attributes (provenance)."""
    g = zarr.open_group(store, path=name, mode="r")
    attrs: dict[str, Any] = dict(g.attrs)
    raw = np.asarray(zarr.open_array(store, path=f"{name}/index", mode="r")[...])
    if attrs["index"] == "month":
        index: pd.Index = pd.PeriodIndex(
            [pd.Period(year=int(v) // 100, month=int(v) % 100, freq="M") for v in raw],
            name=attrs.get("index_name", "month"),
        )
    else:
        index = pd.Index(raw.astype(int), name=attrs["index"])
    data: dict[str, Any] = {
        c: np.asarray(zarr.open_array(store, path=f"{name}/col{k}", mode="r")[...])
        for k, c in enumerate(attrs["numeric"])
    }
    for k, (c, categories) in enumerate(attrs.get("categorical", {}).items()):
        codes = np.asarray(zarr.open_array(store, path=f"{name}/txt{k}", mode="r")[...])
        data[c] = np.asarray(categories, dtype=object)[codes]
    data.update(attrs.get("text", {}))  # tables written before text columns had codes
    frame = pd.DataFrame(data, index=index).loc[:, list(attrs["columns"])]
    own = ("index", "index_name", "numeric", "categorical", "text", "columns")
    meta = {k: v for k, v in attrs.items() if k not in own}
    return frame, meta


def to_parquet(frame: pd.DataFrame, attrs: dict[str, Any]) -> bytes:
    """Parquet bytes; the provenance travels in the file's key-value metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = frame.copy()
    if isinstance(out.index, pd.PeriodIndex):
        out.index = out.index.astype(str)
    table = pa.Table.from_pandas(out.reset_index(), preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[b"carbonsink"] = json.dumps(attrs, default=str).encode()
    buf = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(meta), buf)
    return buf.getvalue()


def to_csv(frame: pd.DataFrame) -> bytes:
    """CSV bytes (the provenance goes in a JSON file beside it)."""
    out = frame.copy()
    if isinstance(out.index, pd.PeriodIndex):
        out.index = out.index.astype(str)
    return out.to_csv(float_format="%.6f").encode()
