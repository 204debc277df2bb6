"""The model frame: formula plus data turned into the engine's arrays, once per fit.

lme4's ``lFormula``: checks the columns, drops incomplete rows (and says so), builds the
response, X with lme4's names and contrasts, each random term's grouping codes and Z
block, weights and offset (:mod:`.model_frame`, with :mod:`.data_prep`'s checks and
grouping columns, :mod:`.naming`'s lme4 names and :mod:`.rfunctions`' R functions).
Everything downstream takes the :class:`~.model_frame.ModelFrame`.
"""
