"""Fast likelihood engines for model structures that plain MixedLM fits slowly.

``vc``: profiled REML/ML for models whose random terms are all scalar (``(1|g)``,
``(0+x|g)``), crossed or nested, the way lme4 computes it (see ``vc``'s module
docstring); ``VarianceComponentsMixedLM`` wraps it as a statsmodels ``MixedLM``.
"""

from .terms import ScalarTerm
from .vc import MAX_DENSE_LEVELS, ProfiledDeviance, ProfiledFit, fit_profiled
from .vc_model import VarianceComponentsMixedLM

__all__ = [
    "MAX_DENSE_LEVELS",
    "ProfiledDeviance",
    "ProfiledFit",
    "ScalarTerm",
    "VarianceComponentsMixedLM",
    "fit_profiled",
]
