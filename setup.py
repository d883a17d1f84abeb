"""Metadata and dependencies are in setup.cfg; this adds the presets to the package.

The TOML presets live in the checkout's top-level folders (attacks/,
models/, benchmarks/). A wheel copies them into
protobench/_presets/, where protobench.paths finds them when the package
is installed without the checkout. Checkpoints (.pt) are not packaged.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PRESET_FOLDERS = ("attacks", "models", "benchmarks")


class BuildWithPresets(build_py):
    """build_py, then attacks/, models/ and benchmarks/ *.toml into protobench/_presets/."""

    def run(self) -> None:
        super().run()
        for folder in PRESET_FOLDERS:
            for source in sorted(Path(folder).rglob("*.toml")):
                target = Path(self.build_lib) / "protobench" / "_presets" / source
                self.mkpath(str(target.parent))
                self.copy_file(str(source), str(target))


setup(cmdclass={"build_py": BuildWithPresets})
