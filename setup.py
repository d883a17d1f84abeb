"""Metadata and dependencies are in pyproject.toml; this adds the presets to the package.

The TOML presets live in the checkout's top-level folders (attacks/,
models/, benchmarks/). A wheel copies them into protobench/_presets/, where
protobench.paths finds them when the package is installed without the
checkout. Of the checkpoints, only the default suite's models are packaged
(benchmarks/default.toml: about 22 MB), so that ``protobench run`` works from
any folder; the others are trained from their recipes or taken from a checkout.
"""

import tomllib
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PRESET_FOLDERS = ("attacks", "models", "benchmarks")


def default_checkpoints() -> list[Path]:
    with open("benchmarks/default.toml", "rb") as f:
        models = tomllib.load(f)["models"]
    return [Path("models") / f"{name}.pt" for name in models if (Path("models") / f"{name}.pt").is_file()]


class BuildWithPresets(build_py):
    """build_py, then the presets (*.toml) and the default checkpoints into protobench/_presets/."""

    def run(self) -> None:
        super().run()
        sources = [s for folder in PRESET_FOLDERS for s in sorted(Path(folder).rglob("*.toml"))]
        for source in sources + default_checkpoints():
            target = Path(self.build_lib) / "protobench" / "_presets" / source
            self.mkpath(str(target.parent))
            self.copy_file(str(source), str(target))


setup(cmdclass={"build_py": BuildWithPresets})
