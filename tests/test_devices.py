import pytest
import torch

from protobench.devices import exact_fp32, resolve_device
from protobench.errors import ProtobenchError


def test_exact_fp32_turns_tf32_off():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        exact_fp32()
        assert not torch.backends.cuda.matmul.allow_tf32
        assert not torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_device_names():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ProtobenchError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ProtobenchError, match="CUDA is not available"):
            resolve_device("cuda")


def test_threads_are_the_free_cores_or_what_is_asked(monkeypatch):
    from protobench import devices

    monkeypatch.setattr(devices, "usable_cores", lambda: 2)
    monkeypatch.setattr(devices.os, "getloadavg", lambda: (0.1, 0.0, 0.0))
    assert devices.choose_threads() == devices.ThreadChoice(
        2, "2 usable cores, load average 0.10 (0.10 of it others'): 2 free; chosen anew before each "
           "work unit", adaptive=True)
    monkeypatch.setattr(devices.os, "getloadavg", lambda: (1.7, 0.0, 0.0))
    assert devices.choose_threads().threads == 1          # another job holds about 2 cores
    monkeypatch.setattr(devices.os, "getloadavg", lambda: (9.0, 0.0, 0.0))
    assert devices.choose_threads().threads == 1          # never fewer than 1
    assert devices.choose_threads(3) == devices.ThreadChoice(3, "--threads")
    assert devices.choose_threads("auto").adaptive                     # --threads auto
    with pytest.raises(ProtobenchError, match="--threads 0"):
        devices.choose_threads(0)

    def no_load():
        raise OSError

    monkeypatch.setattr(devices.os, "getloadavg", no_load)
    assert devices.free_cores() is None
    assert devices.choose_threads() == devices.ThreadChoice(2, "2 usable cores (no load average here)")


def test_a_function_that_sets_threads_gives_them_back():
    from protobench.devices import restores_threads

    @restores_threads
    def greedy():
        torch.set_num_threads(1)
        raise RuntimeError("stops half way")

    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(RuntimeError):
            greedy()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(saved)


def test_an_adaptive_choice_counts_its_own_threads_as_its_own(monkeypatch):
    """A run on 2 threads of 2 cores makes a load of about 2 itself: that leaves 2 free; a
    second job beside it (load about 4) leaves 1."""
    from protobench import devices

    monkeypatch.setattr(devices, "usable_cores", lambda: 2)
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        monkeypatch.setattr(devices.os, "getloadavg", lambda: (2.1, 0.0, 0.0))
        assert devices.retune_threads(devices.ThreadChoice(2, "x", adaptive=True)) == 2
        monkeypatch.setattr(devices.os, "getloadavg", lambda: (4.0, 0.0, 0.0))
        assert devices.retune_threads(devices.ThreadChoice(2, "x", adaptive=True)) == 1
        monkeypatch.setattr(devices.os, "getloadavg", lambda: (1.0, 0.0, 0.0))  # the other job ended
        assert devices.retune_threads(devices.ThreadChoice(1, "x", adaptive=True)) == 2
        assert devices.retune_threads(devices.ThreadChoice(1, "--threads")) == 2  # a fixed choice stays
    finally:
        torch.set_num_threads(saved)
