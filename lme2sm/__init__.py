"""lme2sm: fit R lme4 mixed-model formulas with statsmodels MixedLM.

The pipeline, one public function per stage::

    parse(formula)            -> ParsedFormula   (pure text)
    translate(formula, data)  -> Translation     (statsmodels arguments + term map)
    fit(translation)          -> FitOutcome      (a statsmodels MixedLMResults)
    lmer(formula, data)       -> LmerResult      (all of it, with lme4's names)

``mixedlm`` is a drop-in for ``statsmodels.formula.api.mixedlm`` that reads lme4 terms.
"""

from .compare import anova
from .drop_in import mixedlm
from .errors import (
    ApproximationWarning,
    ArgumentError,
    ConvergenceWarning,
    DataError,
    DroppedRowsWarning,
    FitError,
    FormulaError,
    Lme2smError,
    Lme2smWarning,
    NotExpressibleError,
    RankDeficiencyWarning,
    SingularFitWarning,
)
from .fitting import lmer
from .formula import ParsedFormula, parse
from .glmm import glmer
from .glmm.nb import glmer_nb
from .results import LmerResult
from .statsmodels_fit import FitOutcome, fit
from .translation import Translation, translate

__version__ = "0.1.0"

__all__ = [
    "ApproximationWarning",
    "ArgumentError",
    "ConvergenceWarning",
    "DataError",
    "DroppedRowsWarning",
    "FitError",
    "FitOutcome",
    "FormulaError",
    "Lme2smError",
    "Lme2smWarning",
    "LmerResult",
    "NotExpressibleError",
    "ParsedFormula",
    "RankDeficiencyWarning",
    "SingularFitWarning",
    "Translation",
    "anova",
    "fit",
    "glmer",
    "glmer_nb",
    "lmer",
    "mixedlm",
    "parse",
    "translate",
]
