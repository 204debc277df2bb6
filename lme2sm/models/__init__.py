"""The user's entry points: ``lmer``, ``glmer``, ``glmer_nb`` and ``anova``, and the
result classes that carry every face as a method.

Each entry point only composes the stages (lme4's ``lmer()`` chaining ``lFormula``,
``mkLmerDevfun``, ``optimizeLmer`` and ``mkMerMod``): model frame → engine → results.
"""
