"""Entry point of ``python -m protobench.evaluate``; see :mod:`protobench.cli.evaluate`."""

from protobench.cli.evaluate import main

if __name__ == "__main__":
    raise SystemExit(main())
