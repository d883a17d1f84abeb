"""``python -m protobench COMMAND ...`` = the ``protobench`` console script."""

from protobench.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
