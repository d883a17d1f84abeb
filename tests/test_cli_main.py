import subprocess
import sys

from protobench.cli.main import COMMANDS, main
from protobench.paths import ROOT


def test_console_script_lists_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


def test_console_script_unknown_command(capsys):
    import pytest
    with pytest.raises(SystemExit) as exit_:
        main(["attack"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'attack'" in err and "run" in err and len(err.strip().splitlines()) == 1


def test_console_script_dispatches(capsys):
    assert main(["regress", "/nonexistent", "--baseline", "x.csv"]) == 2
    assert "baseline x.csv does not exist" in capsys.readouterr().err


def test_python_m_entry_points_show_help():
    for module in ["run", "train", "evaluate", "explain", "figures", "report", "regress", "convert"]:
        done = subprocess.run([sys.executable, "-m", f"protobench.{module}", "--help"], cwd=ROOT,
                              capture_output=True, text=True)
        assert done.returncode == 0 and "usage: python -m protobench." in done.stdout, module


def test_console_script_help_names_the_console_script(capsys):
    import pytest
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: protobench run") and "pgd-local" in out and "headline" in out


def test_mistyped_names_fail_before_torch_is_imported():
    """A typo costs a file lookup, not a torch import, and gives the command's own message."""
    cases = {"run": (["--attack", "pgd-locl"], "unknown attack 'pgd-locl'"),
             "run ": (["--suite", "headlin"], "unknown benchmark suite 'headlin'"),
             "run  ": (["--model", "synth-smalcnn"], "unknown model 'synth-smalcnn'"),
             "train": (["--recipe", "synth-smalcnn"], "unknown model recipe 'synth-smalcnn'"),
             "evaluate": (["--model", "nope.pt"], "checkpoint nope.pt does not exist"),
             "explain": (["--model", "synth-smalcnn"], "unknown model 'synth-smalcnn'")}
    for command, (argv, message) in cases.items():
        code = (f"import sys; from protobench.cli.{command.strip()} import main; "
                f"rc = main({argv!r}); print('torch' in sys.modules); sys.exit(rc)")
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 2, (command, done.stderr)
        assert message in done.stderr, (command, done.stderr)
        assert done.stdout.strip() == "False", command


def test_a_bad_argument_is_one_error_line_and_exit_2():
    """argparse's own errors follow the contract too: no usage block before the line."""
    for module, args, named in [("run", ["--limit", "0"], "argument --limit: 0 must be >= 1"),
                                ("train", [], "the following arguments are required: --recipe"),
                                ("explain", ["--model", "synth-smallcnn", "--top-k", "x"], "--top-k")]:
        done = subprocess.run([sys.executable, "-m", f"protobench.{module}", *args], cwd=ROOT,
                              capture_output=True, text=True)
        assert done.returncode == 2, module
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], done.stderr
        assert f"(see python -m protobench.{module} --help)" in lines[0]


def test_a_negative_fraction_is_read_as_a_value_and_named():
    """``--eps -1/255`` reaches the eps check (argparse alone would call it an option)."""
    from protobench.cli import ArgumentParser

    parser = ArgumentParser(prog="p")
    parser.add_argument("--eps", nargs="+")
    assert parser.parse_args(["--eps", "-1/255", "-0.5", "2/255"]).eps == ["-1/255", "-0.5", "2/255"]
    done = subprocess.run([sys.executable, "-m", "protobench.run", "--attack", "pgd-local",
                           "--eps", "-1/255"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2
    assert "eps=-0.0039" in done.stderr and "allowed: numbers in (0, 1]" in done.stderr, done.stderr


def test_version_and_list(capsys):
    import pytest

    from protobench import __version__

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"protobench {__version__}\n"
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for heading in ("models:", "attacks:", "suites:", "backbones:"):
        assert heading in out
    assert main(["list", "attacks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    pgd = next(line for line in lines if line.split()[0] == "pgd-local")
    assert "high-activation box" in pgd                    # the preset's own description
    assert main(["list", "models"]) == 0
    assert "synth-efficientnet-lite0" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:                # argparse names the choices
        main(["list", "recipes"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err
