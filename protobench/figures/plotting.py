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
    y = rows[f"{metric}_{kind}"].to_numpy(float)
    err = np.vstack([y - rows[f"{metric}_ci_low"].to_numpy(float),
                     rows[f"{metric}_ci_high"].to_numpy(float) - y])
    ax.errorbar(rows["eps"] * 255, y, yerr=np.nan_to_num(err), capsize=3, ms=4, **style)
