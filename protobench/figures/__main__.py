"""Entry point of ``python -m protobench.figures``; see :mod:`protobench.cli.figures`."""

from protobench.cli.figures import main

if __name__ == "__main__":
    raise SystemExit(main())
