"""protobench list [models|attacks|suites|backbones|families|kinds]: what can be named, with one line each."""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

from protobench.cli import command
from protobench.errors import cli_entry

KINDS = ("models", "attacks", "suites", "backbones", "families", "kinds")


def _description(path: Path) -> str:
    with path.open("rb") as f:
        return str(tomllib.load(f).get("description", "")).strip()


def entries(kind: str) -> list[tuple[str, str]]:
    """(name, one-line description) of every model recipe, attack preset, suite, backbone,
    model family or attack kind."""
    from protobench.paths import ATTACKS_DIR, BENCHMARKS_DIR, MODELS_DIR, trained_models

    if kind == "families":
        from protobench.model.families import FAMILIES

        return [(name, family.summary) for name, family in FAMILIES.items()]
    if kind == "kinds":
        from protobench.attacks.kinds import ATTACK_KINDS

        return [(name, k.summary) for name, k in ATTACK_KINDS.items()]

    if kind == "backbones":
        from protobench.model.backbones import BACKBONES

        out = []
        for name in BACKBONES.names():
            doc = (BACKBONES.get(name).__doc__ or "").strip().splitlines()
            out.append((name, doc[0] if doc else ""))
        return out
    folder = {"models": MODELS_DIR, "attacks": ATTACKS_DIR, "suites": BENCHMARKS_DIR}[kind]
    out = []
    trained = trained_models() if kind == "models" else []
    for path in sorted(folder.glob("*.toml")):
        text = _description(path)
        if kind == "models" and path.stem not in trained:
            text += " (recipe only: train it with protobench train)"
        out.append((path.stem, text))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", nargs="?", choices=KINDS, help="what to list (default: all of them)")


@cli_entry
def execute(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    for i, kind in enumerate([args.kind] if args.kind else KINDS):
        if not args.kind:
            print(("\n" if i else "") + f"{kind}:")
        rows = entries(kind)
        width = max((len(name) for name, _ in rows), default=0)
        for name, text in rows:
            print(f"  {name:<{width}}  {text}".rstrip())
    return 0


main = command('list', __doc__, add_arguments, execute)
