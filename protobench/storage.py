"""Atomic files: a result file is either complete or absent, never half-written."""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from protobench.errors import ProtobenchError


def safe_name(name: object) -> str:
    """``name`` as a file-name part: runs of characters outside [A-Za-z0-9_.-] become '_'."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name))


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    atomic_write_all({path: write})
    return path


def atomic_write_all(writers: dict[Path, Callable[[Path], None]]) -> list[Path]:
    """Write every file of ``writers`` ({path: write(tmp)}), all or none.

    Every temporary file (beside its target) is written first; only when all
    are complete are they renamed into place (renaming needs no space). A
    failure (a full disk) leaves none of the files changed. The files get the
    permissions a plain ``open`` would give them (the umask's; ``tempfile.mkstemp``
    would make them private).
    """
    temps: dict[Path, Path] = {}
    current = None
    try:
        for path, write in writers.items():
            current = path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            temps[path] = tmp
            write(tmp)
        for path, tmp in temps.items():
            current = path
            os.replace(tmp, path)
    except OSError as err:
        raise write_error(current, err) from None
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
    return list(temps)


def json_text(obj: Any) -> str:
    """The JSON of protobench's files (settings.json, run.json): indented, one trailing newline."""
    return json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n"


def write_error(path: Path, err: OSError) -> ProtobenchError:
    """One clear line for a failed write; a full disk says how to recover."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return ProtobenchError(f"no space left on device writing {path}; free space and rerun "
                               "the same command to resume")
    return ProtobenchError(f"cannot write {path}: {err.strerror or err}")


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path: str | Path, obj: Any) -> Path:
    return write_text(path, json_text(obj))


def write_csv(path: str | Path, frame: pd.DataFrame) -> Path:
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def check_creatable(folder: str | Path) -> Path:
    """``folder`` if it exists and can be written, or can be created; creates nothing."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        why = (f"{existing} is not a folder" if not existing.is_dir()
               else f"no permission to write in {existing}")
        raise ProtobenchError(f"output folder {folder} cannot be written: {why}")
    return folder


def check_writable(folder: str | Path) -> Path:
    """``folder``, created if needed; a clear error when it cannot be written."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".probe.", delete=True)
        probe.close()
    except OSError as err:
        raise ProtobenchError(f"output folder {folder} cannot be written: "
                              f"{err.strerror or err}") from None
    return folder


def check_writable_file(path: str | Path) -> Path:
    """``path``, a file that can be written: not a folder, in a folder that can be written
    (created if needed). Checked before hours of work that end by writing it."""
    path = Path(path)
    if path.is_dir():
        raise ProtobenchError(f"{path} is a folder; give the file to write, e.g. {path / 'model.pt'}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ProtobenchError(f"cannot write {path}: {parent} is a file, not a folder")
            break
    check_writable(path.parent)
    return path


class Claim:
    """An exclusive claim on an output, held as a lock file that records the owner's pid.

    A second process writing the same output is refused with the owner's pid
    instead of computing everything again beside it (and overwriting what the
    first one writes); a claim left by a process that no longer exists
    (killed) is taken over.
    """

    def __init__(self, lock: str | Path, output: str | Path, writer: str = "run") -> None:
        self.path, self.output, self.writer = Path(lock), output, writer

    def __enter__(self) -> "Claim":
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                owner = _lock_owner(self.path)
                if owner is not None and _alive(owner):
                    raise ProtobenchError(f"another {self.writer} (pid {owner}) is writing to {self.output}; "
                                          "wait for it to finish, or choose another --out") from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            return self
        raise ProtobenchError(f"cannot claim {self.output}: {self.path} keeps reappearing")

    def __exit__(self, *exc) -> None:
        if _lock_owner(self.path) == os.getpid():
            self.path.unlink(missing_ok=True)


class FolderLock(Claim):
    """A run's claim on its output folder (``.lock`` in it)."""

    def __init__(self, folder: str | Path) -> None:
        super().__init__(Path(folder) / ".lock", folder)


def file_claim(path: str | Path, writer: str) -> Claim:
    """A claim on the file ``path`` and the files written beside it (``path`` + '.lock')."""
    path = Path(path)
    return Claim(path.with_name(path.name + ".lock"), path, writer)


def _lock_owner(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
