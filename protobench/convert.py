"""Entry point of ``python -m protobench.convert``; see :mod:`protobench.cli.convert`."""

from protobench.cli.convert import main

if __name__ == "__main__":
    raise SystemExit(main())
