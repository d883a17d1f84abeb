"""The robustness regression gate.

A baseline is two files in ``results/baselines/``:

    NAME.csv               pinned values: one row per (configuration, metric)
    NAME.tolerances.toml   [tolerances] metric = absolute tolerance
    NAME.versions.json     the library versions the pinned run was made with (run.json's)

``compare`` matches every pinned row with the same configuration of a fresh
run's summary.csv and flags a metric whose value moved by more than its
tolerance, or that the run lacks (a missing configuration or metric
column fails; a value pinned as NaN passes only while it stays NaN). A
metric with a tolerance but no pinned value, or a tolerance that is not a
finite number >= 0, makes the baseline malformed. ``update_baseline``
rewrites the pinned values deliberately, for the metrics the tolerance file
names, and records the run's library versions; ``version_differences`` names
the libraries whose version differs from them (another torch or OpenCV can move
a number by a pair: a warning, not a failure).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from protobench.storage import write_csv, write_json
from protobench.bench.tables import CONFIG_COLUMNS
from protobench.errors import ProtobenchError
from protobench.paths import read_toml

KEY_COLUMNS = [c for c in CONFIG_COLUMNS if c != "backbone"]


@dataclass
class Check:
    configuration: str
    metric: str
    baseline: float
    value: float
    tolerance: float
    missing: bool = False  # the run has no such configuration, or no such metric column

    @property
    def difference(self) -> float:
        return self.value - self.baseline

    @property
    def passed(self) -> bool:
        if self.missing:
            return False
        if math.isnan(self.baseline) and math.isnan(self.value):
            return True  # pinned as undefined (e.g. a rate over no pair) and still so
        return abs(self.difference) <= self.tolerance  # False when either is NaN


def tolerances_path(baseline: Path) -> Path:
    return baseline.with_name(baseline.stem + ".tolerances.toml")


def load_tolerances(baseline: Path) -> dict[str, float]:
    path = tolerances_path(baseline)
    if not path.is_file():
        raise ProtobenchError(f"no tolerances for baseline {baseline}: {path} is missing")
    table = read_toml(path).get("tolerances", {})
    # inf could never fail and nan never pass; true is not a number, though Python says 1
    bad = [k for k, v in table.items()
           if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < math.inf]
    if not table or bad:
        raise ProtobenchError(f"{path}: [tolerances] must map metric names to finite absolute "
                              f"tolerances >= 0 (bad: {', '.join(bad) or 'none given'})")
    return {k: float(v) for k, v in table.items()}


def load_summary(results_dir: Path) -> pd.DataFrame:
    path = Path(results_dir) / "summary.csv"
    if not path.is_file():
        raise ProtobenchError(f"{results_dir} holds no summary.csv; run protobench.run first")
    return pd.read_csv(path)


def _key(row: pd.Series) -> str:
    parts = []
    for column in KEY_COLUMNS:
        v = row.get(column)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        if column == "control":
            parts.append("control" if bool(v) else "attack")
        elif column == "eps":
            parts.append(f"eps={float(v):.6g}")
        elif column in ("steps", "quality"):
            parts.append(f"{column}={int(v)}")
        else:
            parts.append(str(v))
    return " ".join(parts)


def load_baseline(baseline: Path, tolerances: dict[str, float]) -> pd.DataFrame:
    """The pinned rows, validated: the key columns, ``metric`` and ``value``, at least one row,
    every metric with a tolerance, every value a number. A malformed baseline is a
    :class:`ProtobenchError` (exit 2), never a pass and never a regression."""
    try:
        pinned = pd.read_csv(baseline)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ProtobenchError(f"baseline {baseline} is not a readable CSV ({err})") from None
    missing = [c for c in [*KEY_COLUMNS, "metric", "value"] if c not in pinned.columns]
    if missing:
        raise ProtobenchError(f"baseline {baseline} lacks column(s) {', '.join(missing)}; "
                              "regenerate it with --update")
    if pinned.empty:
        raise ProtobenchError(f"baseline {baseline} pins no metric (no rows): a gate that "
                              "compares nothing cannot pass; regenerate it with --update")
    untolerated = sorted(set(pinned["metric"]) - set(tolerances))
    if untolerated:
        raise ProtobenchError(f"{baseline}: metric(s) {', '.join(map(repr, untolerated))} have no "
                              f"tolerance in {tolerances_path(baseline)}")
    unpinned = [m for m in tolerances if m not in set(pinned["metric"])]
    if unpinned:  # a tolerance the gate would never use
        raise ProtobenchError(f"{tolerances_path(baseline)}: metric(s) {', '.join(map(repr, unpinned))} "
                              f"have a tolerance but no pinned value in {baseline}; "
                              "pin them with --update")
    values = pd.to_numeric(pinned["value"], errors="coerce")
    bad = pinned.index[values.isna() & pinned["value"].notna()].tolist()
    if bad:
        raise ProtobenchError(f"baseline {baseline}: value of row {bad[0] + 2} is not a number")
    return pinned.assign(value=values)


def compare(results_dir: Path, baseline: Path) -> list[Check]:
    """One :class:`Check` per pinned (configuration, metric)."""
    baseline = Path(baseline)
    if baseline.is_dir():
        raise ProtobenchError(f"baseline {baseline} is a folder; give the pinned CSV, e.g. "
                              f"{baseline / 'ci.csv'}")
    if not baseline.is_file():
        raise ProtobenchError(f"baseline {baseline} does not exist; to create it, write its "
                              f"tolerances ({tolerances_path(baseline)}: [tolerances] metric = "
                              "absolute tolerance) and pin a run's values with --update")
    tolerances = load_tolerances(baseline)
    pinned = load_baseline(baseline, tolerances)
    summary = load_summary(results_dir)
    rows = {_key(r): r for _, r in summary.iterrows()}
    checks = []
    for _, pin in pinned.iterrows():
        key, metric = _key(pin), pin["metric"]
        row = rows.get(key)
        missing = row is None or metric not in row
        value = float("nan") if missing else float(row[metric])
        checks.append(Check(key, metric, float(pin["value"]), value, tolerances[metric], missing))
    return checks


def update_baseline(results_dir: Path, baseline: Path) -> Path:
    """Pin the run's values of every metric named in the tolerance file."""
    baseline = Path(baseline)
    tolerances = load_tolerances(baseline)
    summary = load_summary(results_dir)
    missing = [m for m in tolerances if m not in summary.columns]
    if missing:
        raise ProtobenchError(f"the run has no column(s) {', '.join(missing)} named in "
                              f"{tolerances_path(baseline)}")
    records = []
    for _, row in summary.iterrows():
        for metric in tolerances:
            records.append({**{c: row.get(c) for c in KEY_COLUMNS}, "metric": metric,
                            "value": row[metric]})
    versions = run_versions(results_dir)
    if versions:
        write_json(versions_path(baseline), versions)
    return write_csv(baseline, pd.DataFrame(records))


def versions_path(baseline: Path) -> Path:
    return baseline.with_name(baseline.stem + ".versions.json")


def run_versions(results_dir: Path) -> dict[str, str]:
    """The library versions run.json records ({} for a run folder without one)."""
    path = Path(results_dir) / "run.json"
    if not path.is_file():
        return {}
    try:
        return dict(json.loads(path.read_text()).get("versions") or {})
    except (json.JSONDecodeError, AttributeError):
        return {}


def version_differences(results_dir: Path, baseline: Path) -> list[str]:
    """'torch 2.14.1 (the baseline's: 2.13.0)' for each library whose version differs from
    the one the baseline was pinned with; [] when they agree or either side is unknown."""
    path = versions_path(Path(baseline))
    if not path.is_file():
        return []
    pinned = json.loads(path.read_text())
    ours = run_versions(results_dir)
    return [f"{name} {ours[name]} (the baseline's: {pinned[name]})"
            for name in sorted(pinned) if name in ours and ours[name] != pinned[name]
            and name != "protobench"]


def format_checks(checks: list[Check]) -> str:
    table = pd.DataFrame([{
        "configuration": c.configuration, "metric": c.metric, "baseline": f"{c.baseline:.4f}",
        "new": f"{c.value:.4f}", "difference": f"{c.difference:+.4f}",
        "tolerance": f"{c.tolerance:.4f}",
        "status": "ok" if c.passed else "MISSING" if c.missing else "REGRESSION",
    } for c in checks])
    return table.to_string(index=False)


def _number(x: float) -> float | None:
    return None if math.isnan(x) else x


def checks_record(checks: list[Check], baseline: Path) -> dict:
    """The checks as plain data, for ``--json``: what a CI job reads."""
    return {
        "baseline": str(baseline), "passed": all(c.passed for c in checks),
        "failed": sum(not c.passed for c in checks), "checks": [{
            "configuration": c.configuration, "metric": c.metric, "baseline": _number(c.baseline),
            "value": _number(c.value), "difference": _number(c.difference), "tolerance": c.tolerance,
            "status": "ok" if c.passed else "missing" if c.missing else "regression",
        } for c in checks],
    }


def junit_xml(checks: list[Check], name: str = "protobench.regress") -> str:
    """The checks as a JUnit XML test suite (one test case per pinned metric), which CI
    services show as test results."""
    from xml.etree import ElementTree as ET

    suite = ET.Element("testsuite", name=name, tests=str(len(checks)),
                       failures=str(sum(not c.passed for c in checks)), errors="0")
    for c in checks:
        case = ET.SubElement(suite, "testcase", classname=c.configuration, name=c.metric)
        if not c.passed:
            what = ("the run has no such configuration or metric" if c.missing else
                    f"{c.value:.4f} against the pinned {c.baseline:.4f}: {c.difference:+.4f}, "
                    f"beyond the tolerance {c.tolerance:.4f}")
            ET.SubElement(case, "failure", message=what).text = what
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
