"""The faces of a fit: statsmodels objects, the teaching translation, printed summaries.

Each is built from the model frame, the engine's record and the results: the
statsmodels view (:mod:`.statsmodels_view`), ``translate``/``code()``/``explain()``
(:mod:`.translation`, :mod:`.codegen`, :mod:`.glmer_translate`) and statsmodels' own fit
of a translation (:mod:`.statsmodels_fit`), the drop-in ``mixedlm`` (:mod:`.drop_in`),
lme4's printed summaries (:mod:`.summary`, :mod:`.glmer_summary`) and plots.
"""
