"""A non-editable install of the wheel finds its presets: no checkout needed."""

import shutil
import subprocess
import sys
import sysconfig

from protobench.bench.suite import load_suite
from protobench.paths import ROOT

SOURCES = ["setup.py", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE"]
FOLDERS = ["protobench", "attacks", "models", "benchmarks"]


def test_the_wheel_in_a_fresh_venv_runs_a_named_preset(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        shutil.copy(ROOT / name, source / name)
    packaged = {f"{name}.pt" for name in load_suite("default").models}

    def left_out(folder, names):  # the code and the presets, the default checkpoints; no result
        return {n for n in names if n in ("__pycache__", "prototypes", "cards") or n.endswith(".egg-info")
                or (n.endswith(".pt") and n not in packaged)}

    for name in FOLDERS:
        shutil.copytree(ROOT / name, source / name, ignore=left_out)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                            "--no-build-isolation", "-w", str(tmp_path / "dist"), str(source)],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp_path / "dist").glob("protobench-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # torch and the other dependencies come from this interpreter's site-packages (a .pth
    # line adds the folder only: this environment's editable protobench is not seen)
    with open(f"{purelib}/dependencies.pth", "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                                "-q", "--no-deps", "--no-index", str(wheel)], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr

    code = (
        "import torch, protobench\n"
        "from protobench.paths import IN_CHECKOUT, ROOT\n"
        "assert 'site-packages' in protobench.__file__ and not IN_CHECKOUT, (protobench.__file__, ROOT)\n"
        "from protobench.attacks import attack_names, load_attack\n"
        "assert {'pgd-local', 'auto-local', 'pgd-head-on-stomach'} <= set(attack_names())\n"
        "assert load_attack('pgd-local').mask == 'high-activation'\n"
        "from protobench.bench.suite import load_suite\n"
        "from protobench.training import load_recipe\n"
        "load_suite('default'); load_recipe('synth-smallcnn')\n"
        "from protobench.model import Architecture, ProtoPNet\n"
        "torch.manual_seed(0)\n"
        "m = ProtoPNet.build(Architecture(img_size=32, num_classes=2, prototypes_per_class=2,\n"
        "                                 prototype_depth=8)).eval()\n"
        "report = protobench.attack(m, torch.rand(2, 3, 32, 32), [0, 1], 'pgd-local', steps=2)\n"
        "assert len(report) == 2\n"
        "assert protobench.load('synth-smallcnn').meta.name == 'synth-smallcnn'  # packaged\n"
        "try:\n"
        "    protobench.load('synth-tesnet')\n"
        "except protobench.errors.ProtobenchError as e:\n"
        "    assert 'train it with' in str(e), e\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run([str(python), "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr

    # the main command, from an empty folder: presets and the default models are found
    empty = tmp_path / "empty"
    empty.mkdir()
    done = subprocess.run([str(venv / "bin" / "protobench"), "run", "--attack", "pgd-local", "--limit", "2",
                           "--steps", "2", "--eps", "8/255", "--quiet", "--no-figures"],
                          cwd=empty, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert (empty / "results" / "pgd-local" / "summary.csv").is_file()
    assert "synth-efficientnet-lite0" in (empty / "results" / "pgd-local" / "compact.md").read_text()


def test_the_core_install_leaves_a_users_requests_alone():
    """No core dependency, nor any of theirs, pins requests (torchattacks pins it to 2.25:
    it is the [torchattacks] extra); walked through the installed distributions' metadata."""
    from importlib.metadata import PackageNotFoundError, requires
    from packaging.requirements import Requirement

    seen, todo, pins = set(), ["protobench"], []
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            needs = requires(name) or []
        except PackageNotFoundError:
            continue
        for text in needs:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue  # an extra (protobench[test], [torchattacks]) or another platform's
            if req.name.lower() == "requests" and str(req.specifier):
                pins.append(f"{name}: {text}")
            todo.append(req.name.lower())
    assert "torch" in seen and "torchattacks" not in seen
    assert pins == []
