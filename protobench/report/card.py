"""A model card: what a checkpoint is, how it was made and how good it is, in Markdown.

Made by ``protobench evaluate --model NAME --card``: the checkpoint's own record (recipe,
architecture, training history) and ``evaluate``'s report (accuracy, prototypes on the
object, realism, noise control, JPEG experiment) on the test split, rendered as one page.
models/cards/ holds the card of every committed model.
"""

from __future__ import annotations

import json
from typing import Any

from protobench.model.families import get_family

# Where a checkpoint made before the trainer recorded its device says nothing, the card
# says so rather than guess (models/README.md tells each committed model's story).
UNRECORDED = "not recorded in the checkpoint"


def _percent(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def _spread(spread: dict | None, fmt: str) -> str:
    if not spread or spread.get("median") is None:
        return "-"
    return f"{spread['median']:{fmt}} [{spread['q25']:{fmt}}, {spread['q75']:{fmt}}]"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return UNRECORDED
    minutes, rest = divmod(round(seconds), 60)
    return f"{seconds:.0f} s ({minutes} min {rest} s)" if minutes else f"{seconds:.0f} s"


def _prototypes(arch: dict[str, Any], count: int) -> str:
    return get_family(arch.get("family", "protopnet")).describe_prototypes(arch, count)


def model_card(meta: dict[str, Any], evaluation: dict[str, Any], sha256: str,
               checkpoint: str, command: str, prototypes: int) -> str:
    """The card of one model.

    meta: the checkpoint's ModelMeta as a dict; evaluation: EvaluationReport.to_dict() on
    the test split; sha256: the checkpoint file's; checkpoint: its path as the card names
    it; command: the command that wrote the card (so that anyone can write it again);
    prototypes: how many the network has.
    """
    arch = meta.get("architecture", {})
    recipe = meta.get("recipe", {}) or {}
    history = meta.get("history", {}) or {}
    data = recipe.get("data", {})
    name = meta.get("name") or checkpoint
    lines = [f"# {name}", ""]
    if recipe.get("description"):
        lines += [recipe["description"], ""]
    lines += [
        f"Written by `{command}`; the numbers are the test split's, measured on the checkpoint "
        "below (docs/metrics.md defines each).", "",
        "| | |", "|---|---|",
        f"| checkpoint | `{checkpoint}` |",
        f"| sha256 | `{sha256}` |",
        f"| family | {arch.get('family', 'protopnet')} |",
        f"| backbone | {arch.get('backbone', '-')} |",
        f"| input | {arch.get('img_size', '-')} px |",
        f"| prototypes | {_prototypes(arch, prototypes)} |",
        f"| classes | {len(meta.get('classes', []))} |",
        f"| data | {evaluation.get('dataset', data.get('dataset', '-'))}, "
        f"{evaluation.get('images', '-')} test images"
        f"{', data seed ' + str(data['seed']) if 'seed' in data else ''} |",
        f"| training time | {_duration(history.get('train_seconds'))} |",
        f"| training device | {history.get('device', UNRECORDED)} |",
        "", "## How good it is", "",
        "| measure | value |", "|---|---|",
        f"| test accuracy | {_percent(evaluation.get('accuracy'), 1)} |",
        f"| prototypes on the object (their high-activation box centre) | "
        f"{_percent(evaluation.get('prototypes_on_object'))} |",
    ]
    realism = evaluation.get("realism")
    if realism:
        lines += [
            f"| clean top-1 similarity, median [quartiles] | {_spread(realism.get('top1_similarity'), '.2f')} |",
            f"| d(best irrelevant cell) / d(best cell) | {_spread(realism.get('distance_ratio'), '.1f')} |",
            f"| d(object cell elsewhere) / d(best cell) | {_spread(realism.get('elsewhere_ratio'), '.1f')} |",
        ]
    noise = evaluation.get("noise_stability")
    if noise:
        eps = noise["eps"] * 255
        lines += [
            f"| noise control ({eps:.0f}/255 in the top-1 box): peak stays in R | "
            f"{_percent(noise['peak_stays_in_r'])} [{_percent(noise['peak_stays_in_r_ci'][0])}, "
            f"{_percent(noise['peak_stays_in_r_ci'][1])}] |",
            f"| noise control: prediction kept | {_percent(noise['prediction_kept'])} "
            f"[{_percent(noise['prediction_kept_ci'][0])}, {_percent(noise['prediction_kept_ci'][1])}] |",
        ]
    if evaluation.get("latent_saturation") is not None:
        lines.append(f"| latent saturation (mean \\|z - 0.5\\|) | {evaluation['latent_saturation']:.2f} |")
    jpeg = evaluation.get("jpeg")
    if jpeg:
        c = jpeg["compressed_classes"]
        lines.append(f"| JPEG experiment (quality {jpeg['quality']}): compressed classes, "
                     f"compressed / clean images | {_percent(c['compressed'], 1)} / "
                     f"{_percent(c['clean'], 1)} |")
    lines += ["", "## Recipe", "",
              f"Train it again with `protobench train --recipe {name}` (models/{name}.toml; "
              "another machine's float order gives another model of the same kind).", "",
              "```json", json.dumps(recipe, indent=2, sort_keys=False), "```", ""]
    return "\n".join(lines)
