"""The READMEs' and docs' tables say what the committed result files and checkpoints say.

Result tables, cell for cell: each table copied from a run is introduced by the file it comes from
(``results/<suite>/summary.md``, ``summary.csv`` or ``defences.md``): the
last such path in the text between the previous table and this one. Its
rows are found in that file's summary.md (or defences.md) by their key
columns, and every column the README shows must hold the file's cell. A
column named "its noise control" holds the noise control's cell of the
column before it.

Model tables: a row that names a committed checkpoint quotes the test
accuracy and the share of prototypes on the object that its training
recorded (``meta.history``); the peer's row quotes the figures of
``protobench.evaluation.realism.PEER_FIGURES``.
"""

import functools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SOURCE = re.compile(r"results/([\w-]+)/(summary\.md|summary\.csv|compact\.md|defences\.md)")
KEYS = ("attack", "model", "eps", "steps", "defence")
CONTROL_COLUMN = "its noise control"


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def markdown_tables(text: str) -> list[tuple[str, list[str], list[list[str]]]]:
    """(the text before the table, since the previous one; header; rows) of every table."""
    lines = text.splitlines()
    tables, before, i = [], [], 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and re.match(r"\|[-| ]+\|$", lines[i + 1]):
            header, rows, i = _cells(lines[i]), [], i + 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            tables.append(("\n".join(before), header, rows))
            before = []
        else:
            before.append(lines[i])
            i += 1
    return tables


def committed_table(suite: str, name: str) -> tuple[list[str], list[list[str]]]:
    """The file's markdown table (summary.md stands for summary.csv: the same numbers, formatted)."""
    path = ROOT / "results" / suite / (name if name in ("defences.md", "compact.md") else "summary.md")
    [(_, header, rows)] = markdown_tables(path.read_text())
    return header, rows


# the texts that copy committed numbers: the README and the docs behind it
TEXTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _copied_tables():
    for text in TEXTS:
        yield from _copied_tables_of(text)


def _copied_tables_of(path: Path):
    for before, header, rows in markdown_tables(path.read_text()):
        sources = SOURCE.findall(before)
        if sources and header[0] in KEYS + ("model",):
            suite, name = sources[-1]
            yield pytest.param(header, rows, suite, name, id=f"{path.stem}-{suite}")


COPIED = list(_copied_tables())


def test_the_readme_copies_the_headline_reference_family_and_defence_tables():
    assert {p.values[2] for p in COPIED} >= {"headline", "reference", "families", "defences"}


def _find(header: list[str], rows: list[list[str]], key: dict[str, str]) -> dict[str, str] | None:
    for row in rows:
        record = dict(zip(header, row))
        if all(record.get(k) == v for k, v in key.items()):
            return record
    return None


@pytest.mark.parametrize("header,rows,suite,name", COPIED)
def test_a_readme_table_holds_the_committed_file_cells(header, rows, suite, name):
    file_header, file_rows = committed_table(suite, name)
    if name == "compact.md":  # the controls sit beside their attacks, under repeated headers
        _check_by_occurrence(header, rows, file_header, file_rows, suite)
        return
    for row in rows:
        shown = dict(zip(header, row))
        key = {k: shown[k] for k in KEYS if k in shown}
        # the family table names the family after the model: "synth-pipnet (PIP-Net)"
        key["model"] = re.sub(r" \(.*\)$", "", key["model"])
        record = _find(file_header, file_rows, key)
        assert record is not None, f"results/{suite}: no row {key}"
        control = None
        if CONTROL_COLUMN in header:
            control = _find(file_header, file_rows, {**key, "attack": f"{key['attack']} (control)"})
        for j, column in enumerate(header):
            if column in KEYS:
                continue
            expected = (control[header[j - 1]] if column == CONTROL_COLUMN else record[column])
            assert row[j] == expected, f"README, {key}, {column!r}: results/{suite} has {expected!r}"


def _occurrences(header: list[str]) -> list[tuple[str, int]]:
    """Each column as (name, how many columns of that name came before it)."""
    seen: dict[str, int] = {}
    out = []
    for name in header:
        out.append((name, seen.get(name, 0)))
        seen[name] = seen.get(name, 0) + 1
    return out


def _check_by_occurrence(header, rows, file_header, file_rows, suite):
    where = {column: i for i, column in enumerate(_occurrences(file_header))}
    for row in rows:
        key = {k: v for k, v in zip(header, row) if k in KEYS}
        matches = [r for r in file_rows if all(r[file_header.index(k)] == v for k, v in key.items())]
        assert len(matches) == 1, f"results/{suite}: {len(matches)} rows match {key}"
        for (column, n), cell in zip(_occurrences(header), row):
            expected = matches[0][where[(column, n)]]
            assert cell == expected, f"{key}, {column!r} ({n + 1}.): results/{suite} has {expected!r}"


def _model_rows():
    """(file, checkpoint name, row as a dict) of every README row quoting a committed model's
    test accuracy: the model cell is its name, maybe bold, maybe "(committed ...)" after it."""
    from protobench.paths import MODELS_DIR

    committed = {p.stem for p in MODELS_DIR.glob("*.pt")}
    for path in (*TEXTS, ROOT / "models" / "README.md"):
        for _, header, rows in markdown_tables(path.read_text()):
            if "test accuracy" not in header:
                continue
            for row in rows:
                name = re.sub(r"\s*\(committed.*\)$", "", row[0].replace("**", ""))
                if name in committed:
                    yield path.relative_to(ROOT), name, dict(zip(header, row))


MODEL_ROWS = list(_model_rows())


def test_the_readmes_quote_every_family_and_default_model():
    assert {name for _, name, _ in MODEL_ROWS} >= {"synth-smallcnn", "synth-resnet18", "synth-protopool",
                                                   "synth-pipnet", "synth-tesnet", "synth-jpeg-30"}


@functools.cache
def recorded_history(name: str) -> dict:
    """What the checkpoint's training recorded; each checkpoint is loaded once for all its rows."""
    import protobench

    return protobench.load(name).meta.history


@pytest.mark.parametrize("path,name,row", MODEL_ROWS, ids=[f"{p}-{n}" for p, n, _ in MODEL_ROWS])
def test_a_quoted_model_row_holds_what_its_checkpoint_records(path, name, row):
    """Test accuracy and the share of prototypes on the object, as recorded at training."""
    history = recorded_history(name)
    assert row["test accuracy"] == f"{100 * history['test_accuracy']:.1f}%"
    on_object = row.get("prototypes on the object")
    if on_object is not None:
        assert on_object.startswith(f"{100 * history['prototypes_on_object']:.0f}%"), on_object


PEER_ROW = "Hoffmann et al.'s CUB models (what their notebooks print)"
ELSEWHERE_COLUMN = "d(object 2+ cells away) / d(best)"


def _peer_rows():
    for path in (*TEXTS, ROOT / "models" / "README.md"):
        for _, header, rows in markdown_tables(path.read_text()):
            for row in rows:
                if row[0] == PEER_ROW:
                    yield path.relative_to(ROOT), dict(zip(header, row))


PEER_ROWS = list(_peer_rows())


def test_every_realism_table_has_the_peers_row():
    assert len(PEER_ROWS) == 5


@pytest.mark.parametrize("path,row", PEER_ROWS, ids=[str(p) for p, _ in PEER_ROWS])
def test_the_peers_row_quotes_what_their_notebooks_print(path, row):
    from protobench.evaluation.realism import PEER_RESNET18, PEER_VGG19_JPEG, Spread, peer_top1, peer_window_ratio

    resnet18, vgg19 = peer_top1(PEER_RESNET18), Spread.of(peer_top1(PEER_VGG19_JPEG))
    top1 = next(v for k, v in row.items() if k.startswith("top-1 similarity"))
    assert top1 == (f"{float(resnet18[0]):.2f} (ResNet18, {len(resnet18)} image); {vgg19.median:.2f} "
                    f"[{vgg19.q25:.2f}, {vgg19.q75:.2f}] (JPEG VGG19, {vgg19.n} images)")
    ratio = next(v for k, v in row.items() if k in ("d ratio", "d(irrelevant) / d(best)"))
    assert ratio == f"not printed ({peer_window_ratio():.1f}x to a 2x2 window on the bird, 1 image)"
    assert row[ELSEWHERE_COLUMN] == f"{peer_window_ratio():.1f}x (the 2x2 window they attack, 1 image)"


def test_the_elsewhere_column_is_the_realism_modules():
    from protobench.attacks.regions import ELSEWHERE

    assert ELSEWHERE_COLUMN == f"d(object {ELSEWHERE}+ cells away) / d(best)"
