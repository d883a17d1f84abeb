"""Entry point of ``python -m protobench.train``; see :mod:`protobench.cli.train`."""

from protobench.cli.train import main

if __name__ == "__main__":
    raise SystemExit(main())
