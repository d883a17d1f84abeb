"""User-facing errors.

A :class:`ProtobenchError` is an expected mistake (a bad name, a bad value, a
missing file). Command-line entry points catch it, print its one-line message
and exit non-zero; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import functools
import sys
from typing import Callable


class ProtobenchError(Exception):
    """An expected user error, with a message that names the bad value."""


class UntrustedCheckpointError(ProtobenchError):
    """A checkpoint names a class or function outside the allow-list."""


def cli_entry(main: Callable[..., int | None]) -> Callable[..., int]:
    """Wrap a command-line ``main`` so that user errors exit with status 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs) or 0
        except ProtobenchError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except OSError as err:  # a full disk outside protobench's own writers (a figure)
            if err.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            where = f" writing {err.filename}" if err.filename else ""
            print(f"error: no space left on device{where}; free space and rerun the same command "
                  "to resume", file=sys.stderr)
            return 2

    return wrapper
