"""lme4's linear mixed model, computed from sums over rows.

``crossprod``: the cross-products of ``[Z_1 ... Z_m X y]`` a deviance evaluation needs
(additive over row partitions, so data beyond memory are summed where they live).
``lmm``: the profiled REML/ML deviance by a blocked Cholesky (nested terms level by
level, crossed ones in one dense block), the optimum and the engine's record of the fit.
``optimize``: BOBYQA (nlopt) within lme4's bounds.
"""

from lme2sm.engine.crossprod import CrossProducts, TermRows, cross_products
from lme2sm.engine.lmm import MAX_DENSE, LmmFit, ProfiledLMM, TermSpec, theta_lower, theta_start
from lme2sm.engine.optimize import minimize_theta

__all__ = [
    "MAX_DENSE",
    "CrossProducts",
    "LmmFit",
    "ProfiledLMM",
    "TermRows",
    "TermSpec",
    "cross_products",
    "minimize_theta",
    "theta_lower",
    "theta_start",
]
