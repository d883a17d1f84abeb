"""``protobench report RUN_DIR``: one self-contained HTML page of a run.

The page holds the compact table (each attack beside its noise control), every figure of
figures/ embedded, every metric of summary.csv, the exact command and the provenance
that run.json records, and links to the run's files.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pandas as pd

from protobench.bench.tables import COMPACT_CAPTION, compact_table, control_rows, headline_table
from protobench.errors import ProtobenchError
from protobench.figures.results import read_summary
from protobench.report.html import definitions, embedded_image, escape, page, table
from protobench.report.noise import NOISE_ALERT, noise_alert
from protobench.storage import atomic_write

PAGE_NAME = "report.html"
FIGURE_KINDS = [("sweep-", "the attack across its eps and steps, with the noise control"),
                ("panel-", "attacked pairs: the clean image, the attacked one, the similarity "
                           "maps before and after"),
                ("local-analysis-", "Hoffmann et al.'s local analysis of the top prototypes"),
                ("defences", "what each defence buys and costs"),
                ("jpeg", "the JPEG experiment")]
RUN_FILES = ["compact.md", "compact.tex", "summary.csv", "summary.md", "summary.tex",
             "pairs.csv", "run.json"]


def read_run(run_dir: Path) -> tuple[pd.DataFrame, dict]:
    """summary.csv and run.json of a run folder, or one clear error."""
    if not run_dir.is_dir():
        raise ProtobenchError(f"{run_dir} is not a folder: give a run folder (results/<run-name>)")
    if not (run_dir / "summary.csv").is_file():
        raise ProtobenchError(f"{run_dir} holds no summary.csv: not a protobench run folder "
                              "(protobench run writes one)")
    info = {}
    if (run_dir / "run.json").is_file():
        try:
            info = json.loads((run_dir / "run.json").read_text())
        except json.JSONDecodeError as err:
            raise ProtobenchError(f"{run_dir / 'run.json'} is not valid JSON ({err}); rerun the "
                                  "run to write it again") from None
    return read_summary(run_dir / "summary.csv"), info


def compact_alerts(summary: pd.DataFrame) -> list[str | None]:
    """Per row of compact_table(summary): why its noise control disqualifies it, or None."""
    controls = control_rows(summary)
    attacks = summary[~summary["control"].astype(bool)]
    return [noise_alert(controls.get((r["model"], r["attack"], r["eps"])))
            for _, r in attacks.iterrows()]


def _figures(run_dir: Path, base: Path) -> list[str]:
    figures = sorted((run_dir / "figures").glob("*.png")) if (run_dir / "figures").is_dir() else []
    if not figures:
        return ["<p>No figures: the run was made with --no-figures, or drew none "
                f"(<code>protobench figures {escape(run_dir)}</code> draws them).</p>"]
    order = {prefix: i for i, (prefix, _) in enumerate(FIGURE_KINDS)}

    def kind(path: Path) -> tuple[int, str]:
        prefix = next((p for p, _ in FIGURE_KINDS if path.name.startswith(p)), None)
        return (order.get(prefix, len(order)), path.name)

    out = []
    for path in sorted(figures, key=kind):
        about = next((text for p, text in FIGURE_KINDS if path.name.startswith(p)), "")
        pdf = path.with_suffix(".pdf")
        pdf_link = f' (<a href="{escape((base / "figures" / pdf.name).as_posix())}">PDF</a>)' if pdf.is_file() else ""
        out.append(f"<figure>{embedded_image(path, path.stem)}<figcaption>{escape(path.name)}"
                   f"{': ' + escape(about) if about else ''}{pdf_link}</figcaption></figure>")
    return out


def _provenance(info: dict) -> list[tuple[str, str]]:
    items = []
    suite = info.get("suite") or {}
    if suite:
        items.append(("suite", f"{suite.get('name')}: {suite.get('description', '')}"))
    for name, sha in (info.get("checkpoints_sha256") or {}).items():
        items.append((f"checkpoint {name}", f"sha256 {sha}"))
    for key, label in [("images_per_model", "images per model"), ("seed", "seed"),
                       ("device_name", "device"), ("threads", "torch threads"),
                       ("threads_chosen_by", "threads chosen by"), ("ranks", "ranks"),
                       ("git_commit", "git commit"), ("work_units", "work units"),
                       ("seconds_total", "seconds in all")]:
        if info.get(key) not in (None, "", {}):
            value = info[key]
            if isinstance(value, dict):
                value = ", ".join(f"{k}: {v}" for k, v in value.items())
            items.append((label, str(value)))
    code = info.get("code") or {}
    if code.get("source_sha256"):
        items.append(("source sha256", code["source_sha256"]))
    versions = info.get("versions") or {}
    if versions:
        items.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    return items


def render_run_page(run_dir: Path, out: Path) -> str:
    summary, info = read_run(run_dir)
    name = run_dir.resolve().name
    suite = info.get("suite") or {}
    command = info.get("command")
    compact = compact_table(summary)
    alerts = compact_alerts(summary)
    body = [f"<h1>protobench run: {escape(name)}</h1>",
            f'<p class="lead">{escape(suite.get("description", ""))}</p>']
    if command:
        body += ["<h2>Command</h2>", f"<pre>{escape(shlex.join(command))}</pre>"]
    body += ["<h2>Each attack beside its noise control</h2>",
             table(compact, COMPACT_CAPTION, flagged=[a is not None for a in alerts])]
    flagged = [(row, alert) for row, alert in zip(compact.itertuples(index=False), alerts) if alert]
    if flagged:
        body.append(f"<p>Marked rows: the noise control already moves the peak out of R, or "
                    f"flips the prediction, for at least {NOISE_ALERT:.0%} of the pairs, so the "
                    "attack's rate there is no evidence of the attack's strength:</p><ul>")
        body += [f"<li>{escape(row.model)}, {escape(row.attack)} at {escape(row.eps)}: "
                 f"{escape(alert)}</li>" for row, alert in flagged]
        body.append("</ul>")
    base = Path(os.path.relpath(run_dir.resolve(), out.resolve().parent))
    body += ["<h2>Figures</h2>", *_figures(run_dir, base),
             "<h2>Every metric</h2>",
             "<details><summary>summary.csv's headline columns, 95% intervals "
             "(docs/metrics.md defines each)</summary>",
             table(headline_table(summary)), "</details>",
             "<h2>Provenance</h2>", definitions(_provenance(info)),
             "<h2>Files</h2><ul>"]
    body += [f'<li><a href="{escape((base / f).as_posix())}">{escape(f)}</a></li>'
             for f in RUN_FILES if (run_dir / f).is_file()]
    body.append("</ul>")
    return page(f"protobench: {name}", body)


def write_run_page(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the run's page (default RUN_DIR/report.html) and return its path."""
    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir / PAGE_NAME
    text = render_run_page(run_dir, out)
    return atomic_write(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
