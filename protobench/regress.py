"""Entry point of ``python -m protobench.regress``; see :mod:`protobench.cli.regress`."""

from protobench.cli.regress import main

if __name__ == "__main__":
    raise SystemExit(main())
