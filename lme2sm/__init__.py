"""lme2sm: fit R lme4 mixed-model formulas with statsmodels MixedLM."""

from .errors import (
    ArgumentError,
    DataError,
    FitError,
    FormulaError,
    Lme2smError,
    NotExpressibleError,
)

__version__ = "0.1.0"

__all__ = [
    "ArgumentError",
    "DataError",
    "FitError",
    "FormulaError",
    "Lme2smError",
    "NotExpressibleError",
]
