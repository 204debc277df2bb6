"""lme2sm: fit R lme4 mixed-model formulas in Python, with lme4's numbers and names and
statsmodels objects.

The packages are the pipeline's stages, left to right (docs/architecture.md); each
imports only from the ones before it::

    formula/    text -> ParsedFormula                        (lme4's expansions)
    frame/      ParsedFormula + data -> ModelFrame           (X, Z, weights, offset, once)
    engine/     ModelFrame -> CrossProducts -> LmmFit        (one PLS core, the optimiser)
    glmm/       PIRLS and lme4's glmer stages on that core
    large/      the same frame and sums for data beyond memory
    results/    frame + record -> lme4-named estimates
    inference/  Satterthwaite, Kenward-Roger, intervals, emmeans, simulate
    faces/      statsmodels view, translate/code()/explain(), summaries, plots
    models/     lmer, glmer, glmer_nb, anova and the result classes
    cli         the ``lme2sm`` command

``translate(formula, data)`` gives the statsmodels MixedLM arguments a formula becomes,
``fit(translation)`` fits them with statsmodels, and ``mixedlm`` is a drop-in for
``statsmodels.formula.api.mixedlm`` that reads lme4 terms.
"""

from lme2sm.errors import (
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
    RowsNotInMemoryError,
    SingularFitWarning,
)
from lme2sm.faces.drop_in import mixedlm
from lme2sm.faces.statsmodels_fit import FitOutcome, fit
from lme2sm.faces.translation import Translation, translate
from lme2sm.formula import ParsedFormula, parse
from lme2sm.models.anova import anova
from lme2sm.models.drop1 import drop1
from lme2sm.models.glmer import glmer
from lme2sm.models.glmer_nb import glmer_nb
from lme2sm.models.lmer import lmer
from lme2sm.models.lmer_result import LmerResult

__version__ = "0.1.0"


def __getattr__(name: str):
    """``lme2sm.plots`` on first use (matplotlib is an optional extra)."""
    if name == "plots":
        import importlib

        return importlib.import_module("lme2sm.faces.plots")
    raise AttributeError(f"module 'lme2sm' has no attribute {name!r}")


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
    "RowsNotInMemoryError",
    "SingularFitWarning",
    "Translation",
    "anova",
    "drop1",
    "fit",
    "glmer",
    "glmer_nb",
    "lmer",
    "mixedlm",
    "parse",
    "translate",
]
