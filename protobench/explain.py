"""Entry point of ``python -m protobench.explain``; see :mod:`protobench.cli.explain`."""

from protobench.cli.explain import main

if __name__ == "__main__":
    raise SystemExit(main())
