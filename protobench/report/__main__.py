"""Entry point of ``python -m protobench.report``; see :mod:`protobench.cli.report`."""

from protobench.cli.report import main

if __name__ == "__main__":
    raise SystemExit(main())
