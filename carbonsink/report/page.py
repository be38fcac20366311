"""The one-page HTML report: figures, the budget and regional tables, the provenance.

The page is self-contained (figures embedded as data URIs), so it can be copied out of the
lake, mailed or served from object storage as one file.
"""

from __future__ import annotations

import base64
import html
import json
from typing import Any

import pandas as pd

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1150px; margin: 2em auto; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 1.8em; }
table { border-collapse: collapse; font-size: 0.85em; }
td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #f2f2f2; } img { max-width: 100%; } .note { color: #555; font-size: 0.9em; }
.warning { background: #fdecea; border: 2px solid #c0392b; padding: 0.6em; font-weight: 600; }
"""


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def render(
    title: str,
    headline: str,
    figures: dict[str, bytes],
    tables: dict[str, pd.DataFrame],
    provenance: dict[str, Any],
    *,
    notes: list[str] | None = None,
    warning: bool = False,
) -> str:
    """The report as an HTML string.

    Parameters
    ----------
    figures
        Caption -> PNG bytes, in page order.
    tables
        Caption -> table, in page order (numbers shown to 2 decimals).
    provenance
        Where every figure came from (JSON-safe).
    notes
        Paragraphs under the headline (what is adjusted, where the tables are).
    warning
        Show the headline as a warning (the budget rests on synthetic data).
    """
    lead = "warning" if warning else "lead"
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p class='{lead}'>{html.escape(headline)}</p>",
        *(f"<p class='note'>{html.escape(n)}</p>" for n in notes or []),
    ]
    for caption, png in figures.items():
        parts.append(f"<h2>{html.escape(caption)}</h2>{_img(png, caption)}")
    for caption, table in tables.items():
        parts.append(f"<h2>{html.escape(caption)}</h2>")
        parts.append(table.to_html(float_format=lambda v: f"{v:.2f}", na_rep="", border=0))
    parts.append("<h2>Provenance</h2><pre class='note'>")
    parts.append(html.escape(json.dumps(provenance, indent=2, default=str)))
    parts.append("</pre></body></html>")
    return "\n".join(parts)
