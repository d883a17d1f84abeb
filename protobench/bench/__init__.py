"""The benchmark: suites (suite.py), the runner (runner.py), tables (tables.py) and the
regression gate (regress.py)."""
