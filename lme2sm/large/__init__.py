"""lmer on data beyond memory: Dask, polars and Parquet (see docs/large-data.md).

The profiled deviance of a linear mixed model needs only sums over rows (the engine's
:class:`~lme2sm.engines.crossprod.CrossProducts`). They are computed partition by
partition where the data are and added up; the optimisation runs locally on them.
Optional dependencies: ``pip install "lme2sm[dask]"``, ``"lme2sm[polars]"``,
``"lme2sm[parquet]"``.
"""

from .example import SDS, example_panel
from .fit import LargeFit, build_lazy_frame, fit_large, lmer_large
from .frame import LazyModelFrame, RowsNotInMemoryError
from .sources import as_source

__all__ = [
    "SDS",
    "LargeFit",
    "LazyModelFrame",
    "RowsNotInMemoryError",
    "as_source",
    "build_lazy_frame",
    "example_panel",
    "fit_large",
    "lmer_large",
]
