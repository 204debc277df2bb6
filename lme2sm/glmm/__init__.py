"""Generalised linear mixed models on the one PLS core: families, PIRLS and lme4's stages.

lme4's ``glFormula -> mkGlmerDevfun -> optimizeGlmer``: the GLM families and their links
(:mod:`.family`), the response as R's family reads it (:mod:`.response`), penalised
iteratively reweighted least squares and the Laplace/AGQ deviance (:mod:`.pirls`), lme4's
two optimisation stages and the Hessian (:mod:`.fit`), and the negative binomial's search
over its shape (:mod:`.nb`). The user-facing ``glmer`` and its results live in
:mod:`lme2sm.models.glmer` and :mod:`lme2sm.results.glmer`.
"""
