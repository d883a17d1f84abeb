"""``module:name`` on the command line: an object of the user's own code.

``protobench run --model my_models:small_cnn --data my_models:squares`` imports
``my_models`` (from the working directory or the Python path) and takes its
``small_cnn``: the object itself, or what calling it with no arguments returns.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import Any

from protobench.errors import ProtobenchError

_FACTORY = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


def is_factory(text: object) -> bool:
    """Whether ``text`` names ``module:attribute`` (not a file that exists)."""
    return isinstance(text, str) and bool(_FACTORY.fullmatch(text)) and not Path(text).exists()


def from_factory(text: str, what: str) -> Any:
    """The object ``module:attribute`` names, called when it is a function or class.
    ``what`` says what it should be, for the error messages ("--model")."""
    module_name, _, attribute = text.partition(":")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, "")  # the working directory, as `python -m` has it
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ProtobenchError(f"{what} {text}: cannot import {module_name!r} ({err}); run from "
                              "the folder that holds it, or add that folder to PYTHONPATH") from None
    obj: Any = module
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise ProtobenchError(f"{what} {text}: {module_name!r} has no {attribute!r}")
        obj = getattr(obj, part)
    import torch.nn as nn

    if callable(obj) and not isinstance(obj, nn.Module):
        obj = obj()
    return obj
