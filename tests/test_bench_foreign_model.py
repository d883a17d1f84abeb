"""The runner takes any prototype model: a small CNN with its own similarity maps, through
protobench.PrototypeAdapter and a data set of the caller's, is benchmarked into a summary with
the noise control beside the attack, and gated by regress."""

import pandas as pd
import pytest
import torch
import torch.nn as nn
from torch.utils.data import Dataset

import protobench
from protobench.cli.regress import main as regress
from protobench.errors import ProtobenchError


class TwoPrototypeCNN(nn.Module):
    """Not protobench's: 4 prototypes (2 per class) compared with every cell of an 8 x 8 grid."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                                      nn.Conv2d(8, 8, 3, stride=2, padding=1))
        self.prototypes = nn.Parameter(torch.randn(4, 8))
        self.head = nn.Linear(4, 2)

    def similarity(self, x: torch.Tensor) -> torch.Tensor:   # (B, 4, 8, 8): higher is nearer
        z = self.features(x)
        return -((z[:, None] - self.prototypes[None, :, :, None, None]) ** 2).sum(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.similarity(x).flatten(2).amax(2))


class Squares(Dataset):
    """32 px images: a bright square (the object, masked) on noise; label = its quadrant row."""

    def __init__(self, n: int = 6) -> None:
        g = torch.Generator().manual_seed(0)
        self.images = torch.rand(n, 3, 32, 32, generator=g) * 0.5
        self.masks = torch.zeros(n, 32, 32, dtype=torch.bool)
        self.labels = []
        for i in range(n):
            top = 4 if i % 2 == 0 else 18
            self.masks[i, top:top + 10, 10:20] = True
            self.images[i][:, self.masks[i]] = 0.9
            self.labels.append(i % 2)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.images[i], self.labels[i]

    def relevance_mask(self, i: int) -> torch.Tensor:
        return self.masks[i]


@pytest.fixture
def foreign():
    torch.manual_seed(0)
    net = TwoPrototypeCNN().eval()
    model = protobench.PrototypeAdapter(net, similarity_maps=net.similarity, prototype_class=[0, 0, 1, 1],
                                        img_size=32)
    model.name = "two-prototype-cnn"
    return model


def test_a_foreign_model_is_benchmarked_with_its_noise_control_and_gated(foreign, tmp_path, capsys):
    out = tmp_path / "run"
    result = protobench.benchmark(attacks=["pgd-local"], models=[foreign], data=Squares(), eps="8/255",
                                  steps="5", limit=6, out=out, progress=False)
    summary = result.summary
    assert list(summary["model"].unique()) == ["two-prototype-cnn"]
    assert sorted(summary["control"]) == [False, True] and (summary["n_pairs"] == 6).all()
    pairs = pd.read_csv(out / "pairs.csv")
    assert pairs["outside_unchanged"].all() and (pairs["linf"] <= 8 / 255 + 1e-6).all()
    assert (out / "figures" / "panel-pgd-local-two-prototype-cnn.png").is_file()
    assert not list((out / "figures").glob("local-analysis-*"))   # it has no push sources
    assert "two-prototype-cnn" in (out / "compact.md").read_text()

    baseline = tmp_path / "mine.csv"
    (tmp_path / "mine.tolerances.toml").write_text("[tolerances]\npeak_in_target_rate = 0.2\npred_kept_rate = 0.2\n")
    assert regress([str(out), "--baseline", str(baseline), "--update"]) == 0
    assert regress([str(out), "--baseline", str(baseline), "--junit", str(tmp_path / "gate.xml")]) == 0
    assert "all 4 pinned metrics within tolerance" in capsys.readouterr().out

    # the same run again resumes; other images are another run
    again = protobench.benchmark(attacks=["pgd-local"], models=[foreign], data=Squares(), eps="8/255",
                                 steps="5", limit=6, out=out, progress=False)
    assert again.computed == [] and len(again.skipped) == 2
    with pytest.raises(ProtobenchError, match="another run|other settings|--fresh"):
        protobench.benchmark(attacks=["pgd-local"], models=[foreign], data=Squares(n=8), eps="8/255",
                             steps="5", limit=8, out=out, progress=False)


def test_a_foreign_model_without_data_is_one_clear_error(foreign, tmp_path):
    with pytest.raises(ProtobenchError, match="give its images with data="):
        protobench.benchmark(attacks=["pgd-local"], models=[foreign], out=tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()
    with pytest.raises(ProtobenchError, match="not a prototype model"):
        protobench.benchmark(attacks=["pgd-local"], models=[nn.Linear(2, 2)], data=Squares(),
                             out=tmp_path / "x", progress=False)


FACTORY_MODULE = '''
import torch
import protobench
from test_bench_foreign_model import Squares, TwoPrototypeCNN


def small_cnn():
    torch.manual_seed(0)
    net = TwoPrototypeCNN().eval()
    return protobench.PrototypeAdapter(net, similarity_maps=net.similarity,
                                       prototype_class=[0, 0, 1, 1], img_size=32)


def squares():
    return Squares()
'''


def test_the_command_line_benchmarks_a_model_of_the_users_code(tmp_path, monkeypatch, capsys):
    """protobench run --model MODULE:FACTORY --data MODULE:FACTORY: the model and images of the
    user's own module, swept with the noise control beside the attack, and gated."""
    from pathlib import Path

    from protobench.cli.main import main as protobench_main

    (tmp_path / "my_models.py").write_text(FACTORY_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    out = tmp_path / "run"
    args = ["run", "--attack", "pgd-local", "--model", "my_models:small_cnn", "--data",
            "my_models:squares", "--eps", "8/255", "--steps", "5", "--limit", "6", "--out", str(out),
            "--quiet", "--no-figures"]
    assert protobench_main(args) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["model"].unique()) == ["small_cnn"]   # named by its factory
    assert sorted(summary["control"]) == [False, True] and (summary["n_pairs"] == 6).all()
    assert (out / "report.html").is_file()
    baseline = tmp_path / "mine.csv"
    (tmp_path / "mine.tolerances.toml").write_text("[tolerances]\npeak_in_target_rate = 0.2\n")
    assert regress([str(out), "--baseline", str(baseline), "--update"]) == 0
    assert regress([str(out), "--baseline", str(baseline)]) == 0
    capsys.readouterr()
    assert protobench_main(["run", "--model", "my_models:nothing", "--data", "my_models:squares",
                            "--out", str(tmp_path / "x"), "--quiet"]) != 0
    assert "'my_models' has no 'nothing'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
