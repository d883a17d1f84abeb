"""Where presets, checkpoints and results live.

Presets are data in the project's top-level folders (``attacks/``,
``models/``, ``benchmarks/``), next to the package in a checkout. In order:

1. ``PROTOBENCH_ROOT``, a checkout (or a folder laid out like one);
2. the checkout the package was imported from (an editable install);
3. the presets installed with the package (``protobench/_presets/``, found
   with importlib.resources). Then trained checkpoints are looked for, and
   written, in ./models/ and results go to ./results/, under the working
   directory: nothing is written into site-packages. A checkpoint not in
   ./models/ is looked for among the packaged ones (the default suite's).
"""

from __future__ import annotations

import os
import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Any

from protobench.errors import ProtobenchError

def _root() -> tuple[Path, bool]:
    """(the folder holding attacks/, models/, benchmarks/; whether it is a checkout)."""
    if os.environ.get("PROTOBENCH_ROOT"):
        return Path(os.environ["PROTOBENCH_ROOT"]), True
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "attacks").is_dir() and (checkout / "pyproject.toml").is_file():
        return checkout, True
    return Path(str(files("protobench").joinpath("_presets"))), False


ROOT, IN_CHECKOUT = _root()
ATTACKS_DIR = ROOT / "attacks"
MODELS_DIR = ROOT / "models"            # recipes (and, in a checkout, their checkpoints)
BENCHMARKS_DIR = ROOT / "benchmarks"
CHECKPOINTS_DIR = MODELS_DIR if IN_CHECKOUT else Path("models")   # <name>.pt, by model name
RESULTS_DIR = ROOT / "results" if IN_CHECKOUT else Path("results")
CARDS_DIR = CHECKPOINTS_DIR / "cards"   # <name>.md, a model card per checkpoint


def preset_names(folder: Path) -> list[str]:
    """Names of the TOML presets in ``folder``."""
    return sorted(p.stem for p in folder.glob("*.toml"))


def preset_path(folder: Path, name: str, kind: str) -> Path:
    """The TOML file of preset ``name``; a clear error lists the known ones."""
    path = folder / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(preset_names(folder)) or "none"
        raise ProtobenchError(f"unknown {kind} {name!r}; choose one of: {known}")
    return path


def read_preset(folder: Path, name_or_path: str | Path, kind: str) -> tuple[Path, dict[str, Any]]:
    """Any preset, by one rule: a name means ``folder/<name>.toml``, a ``.toml`` path that file.

    Attack presets, benchmark suites and model recipes all load through here;
    returns the file and its data. Errors name the kind and the known names.
    """
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = preset_path(folder, str(name_or_path), kind)
    return path, read_toml(path)


def check_keys(table: dict[str, Any], allowed: set[str] | list[str], where: str) -> None:
    """One error for keys a preset table may not hold, naming the allowed ones."""
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise ProtobenchError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
                              f"allowed: {', '.join(sorted(allowed))}")


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a dict; a clear error when it is missing or malformed."""
    if not path.is_file():
        raise ProtobenchError(f"{path} does not exist")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ProtobenchError(f"{path}: not valid TOML ({err})") from None


def model_checkpoint(name_or_path: str | Path) -> Path:
    """The checkpoint a model argument means: ``models/<name>.pt`` for a name, else the path.

    A checkpoint that does not exist is an error; for a name with a recipe but
    no trained checkpoint it says how to train it, for another name it lists
    the trained models.
    """
    path = Path(name_or_path)
    if path.suffix or path.is_file():
        if not path.is_file():
            raise ProtobenchError(f"checkpoint {path} does not exist")
        return path
    path = CHECKPOINTS_DIR / f"{name_or_path}.pt"
    if path.is_file():
        return path
    if (MODELS_DIR / f"{name_or_path}.pt").is_file():  # packaged with an installed protobench
        return MODELS_DIR / f"{name_or_path}.pt"
    if (MODELS_DIR / f"{name_or_path}.toml").exists():
        raise ProtobenchError(f"model {name_or_path!r} has no trained checkpoint {path}; "
                              f"train it with: python -m protobench.train --recipe {name_or_path}")
    known = ", ".join(trained_models()) or "none"
    raise ProtobenchError(f"unknown model {name_or_path!r}: checkpoint {path} does not exist "
                          f"(trained models: {known})")


def trained_models() -> list[str]:
    """The names of the models with a checkpoint: ./models/ (a checkout's models/) and, in an
    installed package, the packaged ones."""
    return sorted({p.stem for folder in (CHECKPOINTS_DIR, MODELS_DIR) for p in folder.glob("*.pt")})


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
