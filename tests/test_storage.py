"""Atomic writes: whole files or none, with the permissions a plain open() gives."""

import os
import stat

import pytest

from protobench import storage


def test_atomic_write_gives_a_plain_files_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = storage.write_text(tmp_path / "summary.md", "x\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # mkstemp alone would give 0o600


@pytest.mark.faults
def test_a_failed_write_leaves_no_file(tmp_path):
    def fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        storage.atomic_write(tmp_path / "pairs.csv", fail)
    assert list(tmp_path.iterdir()) == []


def test_safe_name():
    assert storage.safe_name("models/my model.pt") == "models_my_model.pt"
