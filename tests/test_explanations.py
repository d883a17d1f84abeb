import torch

import protobench
from protobench.cli.explain import main
from protobench.data import load_dataset
from protobench.explanations import local_analysis, nearest_patches


def test_local_analysis_ranks_prototypes_by_similarity():
    model = protobench.load("synth-smallcnn")
    image, label = load_dataset("synth", "test", object_scale=[0.6, 0.8], distractors=2,
                                train_per_class=150)[0]
    analysis = local_analysis(model, image, label, k=3)
    sims = [e.similarity for e in analysis.evidence]
    assert sims == sorted(sims, reverse=True) and len(sims) == 3
    with torch.no_grad():
        maps = model.similarity_maps(image[None])[0].flatten(1).amax(1)
    assert abs(sims[0] - float(maps.max())) < 1e-5
    top = analysis.evidence[0]
    assert abs(top.contribution - top.similarity * top.weight) < 1e-5
    assert top.source_image is not None  # the committed model was pushed


def test_nearest_patches_are_sorted_and_cover_every_prototype():
    model = protobench.load("synth-smallcnn")
    data = torch.utils.data.Subset(load_dataset("synth", "test"), range(30))
    idx, sims = nearest_patches(model, data, k=4, batch_size=7)
    assert idx.shape == sims.shape == (model.num_prototypes, 4)
    assert (sims[:, :-1] >= sims[:, 1:]).all()


def test_explain_command_writes_figures(tmp_path, capsys):
    out = tmp_path / "why.png"
    assert main(["--model", "synth-smallcnn", "--image", "2", "--out", str(out), "--global", "3",
                 "--device", "cpu"]) == 0
    assert out.is_file() and (tmp_path / "why-global.png").is_file()
    assert main(["--model", "synth-smallcnn", "--image", "99999", "--out", str(out)]) == 2
    assert "the test split has" in capsys.readouterr().err


def test_explain_writes_under_results_by_default_and_refuses_huge_figures(tmp_path, monkeypatch,
                                                                          capsys):
    import protobench.paths
    monkeypatch.setattr(protobench.paths, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.chdir(tmp_path / "..")
    assert main(["--model", "synth-smallcnn", "--image", "3", "--top-k", "1", "--device", "cpu"]) == 0
    written = tmp_path / "results" / "explanations" / "synth-smallcnn-test3.png"
    assert written.is_file() and str(written) in capsys.readouterr().out
    assert not (tmp_path / ".." / "explanation.png").exists()
    for argv, message in [(["--top-k", "1000"], "at most 20 prototypes"),
                          (["--global", "50"], "at most 20 prototypes"),
                          (["--global", "-1"], "global_k must be >= 0"),
                          (["--out", str(tmp_path / "x.jpg")], "ending in .png")]:
        assert main(["--model", "synth-smallcnn", *argv]) == 2, argv
        assert message in capsys.readouterr().err, argv
    assert not list(tmp_path.glob("x.*"))


def test_a_missing_image_file_and_a_negative_index_are_named_for_what_they_are(tmp_path, capsys):
    """Both used to read "not a file that can be decoded as an image"."""
    out = tmp_path / "e.png"
    assert main(["--model", "synth-smallcnn", "--image", str(tmp_path / "none.png"), "--out", str(out)]) == 2
    assert "none.png: no such file" in capsys.readouterr().err
    assert main(["--model", "synth-smallcnn", "--image", "-1", "--out", str(out)]) == 2
    assert "image -1: a test image index is >= 0" in capsys.readouterr().err
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not an image")
    assert main(["--model", "synth-smallcnn", "--image", str(garbage), "--out", str(out)]) == 2
    assert "not a file that can be decoded as an image" in capsys.readouterr().err
    assert not out.exists()
