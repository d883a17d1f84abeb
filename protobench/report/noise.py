"""When the noise control says a row is no target.

An attack's number means something only where uniform noise of the same mask and budget
leaves the explanation alone: if the noise control already moves the peak out of R, or
flips the prediction, for a share of the pairs, the model's explanation is fragile to any
change and the attack's rate overstates what the attack adds.
"""

from __future__ import annotations

import pandas as pd

# the share of pairs at which the noise control's peak leaving R, or its flipped
# predictions, marks a row
NOISE_ALERT = 0.10


def noise_alert(control: pd.Series | None) -> str | None:
    """Why the noise control disqualifies its attack's row, or None when it does not."""
    if control is None:
        return None
    reasons = []
    moved = control.get("peak_moved_rate")
    if moved is not None and not pd.isna(moved) and moved >= NOISE_ALERT:
        reasons.append(f"noise moves the peak out of R for {moved:.0%}")
    kept = control.get("pred_kept_rate")
    if kept is not None and not pd.isna(kept) and 1 - kept >= NOISE_ALERT:
        reasons.append(f"noise flips {1 - kept:.0%} of the predictions")
    return "; ".join(reasons) or None
