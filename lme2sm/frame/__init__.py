"""The model frame: formula plus data turned into the engine's arrays, once per fit.

lme4's ``lFormula``: checks the columns, drops incomplete rows (and says so), builds the
response, X with lme4's names and contrasts, each random term's grouping codes and Z
block, weights and offset (:mod:`.model_frame`, with :mod:`.data_prep`'s checks,
:mod:`.grouping`'s grouping factors, :mod:`.naming`'s lme4 names and :mod:`.rfunctions`'
R functions). :mod:`.design` is the one module that calls patsy: the data reach it
under :mod:`.safe_names`' internal names, and plain columns skip patsy's evaluation
(:mod:`.plain_design`). Everything downstream takes the :class:`~.model_frame.ModelFrame`.
"""
