"""Entry point of ``python -m protobench.run``; see :mod:`protobench.cli.run`."""

from protobench.cli.run import main

if __name__ == "__main__":
    raise SystemExit(main())
