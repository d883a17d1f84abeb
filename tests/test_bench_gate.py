import pandas as pd
import pytest

from protobench.bench.gate import compare, update_baseline
from protobench.cli.regress import main
from protobench.errors import ProtobenchError

pytestmark = pytest.mark.faults  # the gate cannot be emptied or crashed


def _run(tmp_path, shift=0.0):
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    pd.DataFrame([
        {"attack": "pgd-local", "control": False, "model": "m", "backbone": "smallcnn", "eps": 8 / 255,
         "steps": 10, "quality": None, "sim_shift_mean": -1.0 + shift, "peak_moved_rate": 0.5},
        {"attack": "pgd-local", "control": True, "model": "m", "backbone": "smallcnn", "eps": 8 / 255,
         "steps": None, "quality": None, "sim_shift_mean": -0.1, "peak_moved_rate": 0.0},
    ]).to_csv(run / "summary.csv", index=False)
    return run


@pytest.fixture
def baseline(tmp_path):
    path = tmp_path / "base.csv"
    (tmp_path / "base.tolerances.toml").write_text(
        "[tolerances]\nsim_shift_mean = 0.05\npeak_moved_rate = 0.1\n")
    update_baseline(_run(tmp_path), path)
    return path


def test_gate_passes_on_its_own_baseline(tmp_path, baseline, capsys):
    checks = compare(_run(tmp_path), baseline)
    assert len(checks) == 4 and all(c.passed for c in checks)
    assert main([str(_run(tmp_path)), "--baseline", str(baseline)]) == 0
    assert "all 4 pinned metrics within tolerance" in capsys.readouterr().out


def test_gate_fails_on_a_shift_beyond_tolerance(tmp_path, baseline, capsys):
    run = _run(tmp_path, shift=0.2)
    failed = [c for c in compare(run, baseline) if not c.passed]
    assert [(c.metric, round(c.difference, 6)) for c in failed] == [("sim_shift_mean", 0.2)]
    assert main([str(run), "--baseline", str(baseline)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "+0.2000" in out


def test_gate_tolerates_a_shift_within_tolerance(tmp_path, baseline):
    assert all(c.passed for c in compare(_run(tmp_path, shift=0.04), baseline))


def test_missing_configuration_is_a_regression(tmp_path, baseline):
    run = _run(tmp_path)
    frame = pd.read_csv(run / "summary.csv")
    frame.iloc[:1].to_csv(run / "summary.csv", index=False)
    assert sum(not c.passed for c in compare(run, baseline)) == 2


def test_bad_inputs(tmp_path, baseline, capsys):
    assert main([str(tmp_path / "nowhere"), "--baseline", str(baseline)]) == 2
    assert "no summary.csv" in capsys.readouterr().err
    with pytest.raises(ProtobenchError, match="does not exist"):
        compare(_run(tmp_path), tmp_path / "missing.csv")
    (tmp_path / "base.tolerances.toml").unlink()
    with pytest.raises(ProtobenchError, match="tolerances.toml is missing"):
        compare(_run(tmp_path), baseline)


@pytest.mark.parametrize("damage, message", [
    (lambda f: f.iloc[:0], "pins no metric"),
    (lambda f: f.drop(columns="metric"), "lacks column"),
    (lambda f: f.drop(columns="value"), "lacks column"),
    (lambda f: f.drop(columns="eps"), "lacks column"),
    (lambda f: f.assign(metric="pac_mean"), "no tolerance"),
    (lambda f: f.assign(value="high"), "not a number"),
])
def test_a_malformed_baseline_exits_2_never_0_or_1(tmp_path, baseline, capsys, damage, message):
    damage(pd.read_csv(baseline)).to_csv(baseline, index=False)
    assert main([str(_run(tmp_path)), "--baseline", str(baseline)]) == 2
    assert message in capsys.readouterr().err


def test_an_empty_baseline_file_exits_2(tmp_path, baseline, capsys):
    baseline.write_text("")
    assert main([str(_run(tmp_path)), "--baseline", str(baseline)]) == 2
    assert "not a readable CSV" in capsys.readouterr().err


def test_a_value_pinned_as_nan_passes_only_while_the_run_still_reports_it(tmp_path, capsys):
    """A rate over no pair is NaN, and may be pinned so; a run without that metric column,
    or without that configuration, fails (it used to pass: NaN against NaN)."""
    run = _run(tmp_path)
    frame = pd.read_csv(run / "summary.csv").assign(peak_moved_rate=float("nan"))
    frame.to_csv(run / "summary.csv", index=False)
    path = tmp_path / "nan.csv"
    (tmp_path / "nan.tolerances.toml").write_text("[tolerances]\npeak_moved_rate = 0.1\n")
    update_baseline(run, path)
    assert all(c.passed for c in compare(run, path))
    frame.drop(columns="peak_moved_rate").to_csv(run / "summary.csv", index=False)
    checks = compare(run, path)
    assert [c.missing and not c.passed for c in checks] == [True, True]
    frame.iloc[:1].to_csv(run / "summary.csv", index=False)  # the control row is gone
    assert [c.passed for c in compare(run, path)] == [True, False]
    assert main([str(run), "--baseline", str(path)]) == 1
    assert "MISSING" in capsys.readouterr().out


def test_a_tolerance_the_gate_would_never_use_exits_2(tmp_path, baseline, capsys):
    tolerances = tmp_path / "base.tolerances.toml"
    tolerances.write_text(tolerances.read_text() + "pac_mean = 5.0\n")
    assert main([str(_run(tmp_path)), "--baseline", str(baseline)]) == 2
    assert "'pac_mean' have a tolerance but no pinned value" in capsys.readouterr().err


@pytest.mark.parametrize("tolerance", ["inf", "nan", "true", "-0.1", '"0.1"'])
def test_a_tolerance_that_could_never_fail_or_never_pass_exits_2(tmp_path, baseline, capsys,
                                                                  tolerance):
    (tmp_path / "base.tolerances.toml").write_text(
        f"[tolerances]\nsim_shift_mean = 0.05\npeak_moved_rate = {tolerance}\n")
    assert main([str(_run(tmp_path)), "--baseline", str(baseline)]) == 2
    assert "bad: peak_moved_rate" in capsys.readouterr().err


def test_the_verdict_goes_to_json_and_junit_for_ci_services(tmp_path, baseline, capsys):
    import json
    from xml.etree import ElementTree as ET

    run = _run(tmp_path, shift=0.2)
    out_json, out_xml = tmp_path / "gate.json", tmp_path / "gate.xml"
    assert main([str(run), "--baseline", str(baseline), "--json", str(out_json),
                 "--junit", str(out_xml), "--quiet"]) == 1
    assert "REGRESSION" not in capsys.readouterr().out      # --quiet: the verdict only
    record = json.loads(out_json.read_text())
    assert not record["passed"] and record["failed"] == 1 and len(record["checks"]) == 4
    [bad] = [c for c in record["checks"] if c["status"] != "ok"]
    assert bad["metric"] == "sim_shift_mean" and bad["status"] == "regression"
    suite = ET.parse(out_xml).getroot()
    assert suite.tag == "testsuite" and suite.get("tests") == "4" and suite.get("failures") == "1"
    failures = [case.get("name") for case in suite if case.find("failure") is not None]
    assert failures == ["sim_shift_mean"]


def test_other_library_versions_are_a_warning_not_a_failure(tmp_path, capsys):
    import json

    run = _run(tmp_path)
    versions = {"protobench": "0.1.0", "torch": "2.14.1", "opencv": "5.1.0"}
    (run / "run.json").write_text(json.dumps({"versions": versions}))
    (tmp_path / "base.tolerances.toml").write_text("[tolerances]\npeak_moved_rate = 0.1\n")
    update_baseline(run, tmp_path / "base.csv")
    assert json.loads((tmp_path / "base.versions.json").read_text()) == versions
    assert main([str(run), "--baseline", str(tmp_path / "base.csv")]) == 0
    assert "warning" not in capsys.readouterr().err
    versions.update(torch="2.15.0", protobench="0.2.0")        # protobench's own version is no warning
    (run / "run.json").write_text(json.dumps({"versions": versions}))
    assert main([str(run), "--baseline", str(tmp_path / "base.csv")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["warning: torch 2.15.0 (the baseline's: 2.14.1): a number may move for that reason alone"]
