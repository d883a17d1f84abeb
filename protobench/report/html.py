"""The few pieces of HTML the pages are made of: one stylesheet, tables, embedded images."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1f;
       max-width: 1180px; margin: 2em auto; padding: 0 1.2em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.8em; font-size: 1.25em; }
p.lead { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 13px; }
caption { caption-side: top; text-align: left; color: #555; padding-bottom: 0.4em; max-width: 70em; }
th, td { padding: 0.3em 0.7em; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }
th { border-bottom: 2px solid #888; background: #f6f6f6; }
td.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.flagged td { color: #8a5a00; background: #fff8e6; }
pre, code { font: 12.5px/1.4 ui-monospace, "SFMono-Regular", Menlo, monospace; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; white-space: pre-wrap; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 13px; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1.2em; font-size: 13px; }
dt { color: #555; } dd { margin: 0; }
"""


def escape(text) -> str:
    return html.escape(str(text), quote=True)


def page(title: str, body: list[str]) -> str:
    return "\n".join(["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
                      '<meta name="viewport" content="width=device-width, initial-scale=1">',
                      f"<title>{escape(title)}</title>", f"<style>{STYLE}</style>", "</head>",
                      "<body>", *body, "</body>", "</html>"]) + "\n"


def _is_number(value: str) -> bool:
    return bool(value) and (value[0].isdigit() or value[0] in "-+") and value != "-"


def table(frame: pd.DataFrame, caption: str | None = None, flagged: list[bool] | None = None,
          links: dict[str, list[str | None]] | None = None) -> str:
    """An HTML table of a frame of strings; numbers right-aligned; ``flagged`` rows marked;
    ``links``: {column: href per row} turns that column's cells into links."""
    head = "".join(f"<th>{escape(c)}</th>" for c in frame.columns)
    rows = []
    for i, row in enumerate(frame.itertuples(index=False)):
        cells = []
        for column, value in zip(frame.columns, row):
            text = escape(value)
            href = (links or {}).get(column, [None] * len(frame))[i]
            if href:
                text = f'<a href="{escape(href)}">{text}</a>'
            number = ' class="number"' if _is_number(str(value)) else ""
            cells.append(f"<td{number}>{text}</td>")
        marked = ' class="flagged"' if flagged and flagged[i] else ""
        rows.append(f"<tr{marked}>{''.join(cells)}</tr>")
    caption_html = f"<caption>{escape(caption)}</caption>" if caption else ""
    return (f"<table>{caption_html}<thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def embedded_image(path: Path, alt: str) -> str:
    """An <img> that carries its PNG in the page (a data URI), so the page is one file."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{escape(alt)}">'


def definitions(items: list[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in items) + "</dl>"
