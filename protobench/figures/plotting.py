"""Drawing helpers shared by the result figures."""

from __future__ import annotations

import numpy as np
import pandas as pd


def eps_errorbar(ax, rows: pd.DataFrame, metric: str, kind: str, **style) -> None:
    """``metric`` against eps (x/255) with its 95% interval, from summary rows.

    kind: "rate" or "mean" (the summary column ``<metric>_<kind>``); style:
    matplotlib's errorbar keywords (fmt, ls, color, label, ...).
    """
    rows = rows.sort_values("eps")
    if rows.empty:
        return
    y, err = with_interval(rows, metric, kind)
    ax.errorbar(rows["eps"] * 255, y, yerr=err, capsize=3, ms=4, **style)


def with_interval(rows: pd.DataFrame, metric: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The summary rows' ``<metric>_<kind>`` values and their 95% intervals as matplotlib's
    ``yerr`` (2, n): the distances down and up, 0 where an interval is missing."""
    y = rows[f"{metric}_{kind}"].to_numpy(float)
    err = np.vstack([y - rows[f"{metric}_ci_low"].to_numpy(float),
                     rows[f"{metric}_ci_high"].to_numpy(float) - y])
    return y, np.nan_to_num(err)


def interpolation_for(image: np.ndarray) -> str:
    """How imshow resamples an image drawn about 150 px wide (a fifth of a page at 120 dpi):
    a small image (64 px) pixel for pixel, as the model sees it, which also keeps a PNG small;
    a large one (224 px) antialiased, so that its one-pixel box outlines survive the shrinking."""
    return "nearest" if max(image.shape[:2]) <= 128 else "antialiased"
