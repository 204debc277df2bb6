"""lmer on data beyond memory: Dask, polars and Parquet (see docs/large-data.md).

The profiled deviance of a linear mixed model needs only sums over rows (the engine's
:class:`~lme2sm.engine.crossprod.CrossProducts`). They are computed partition by
partition where the data are and added up; the optimisation runs locally on them.
Optional dependencies: ``pip install "lme2sm[dask]"``, ``"lme2sm[polars]"``,
``"lme2sm[parquet]"``.
"""

from lme2sm.large.example import SDS, example_panel
from lme2sm.large.fit import LargeFit, build_lazy_frame, fit_large
from lme2sm.large.frame import LazyModelFrame, RowsNotInMemoryError
from lme2sm.large.sources import as_source

__all__ = [
    "SDS",
    "LargeFit",
    "LazyModelFrame",
    "RowsNotInMemoryError",
    "as_source",
    "build_lazy_frame",
    "example_panel",
    "fit_large",
]
