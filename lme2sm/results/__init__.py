"""lme4-named results computed from the model frame and the engine's record of a fit.

:mod:`.lmer` for linear mixed models, :mod:`.glmer` for generalised ones: fixef, ranef,
VarCorr, logLik, fitted values and predictions, with lme4's names.
"""
