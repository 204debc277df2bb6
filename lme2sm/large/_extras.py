"""Optional dependencies of the large-data path, imported on demand."""

from __future__ import annotations

import importlib
from types import ModuleType

from lme2sm.errors import Lme2smError

__all__ = ["MissingExtraError", "require"]


class MissingExtraError(Lme2smError, ImportError):
    """An optional dependency is not installed; the message names the extra."""


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``lme2sm[extra]``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(
            f"{what} needs the optional package {module.split('.')[0]!r}: "
            f'pip install "lme2sm[{extra}]"'
        ) from None
