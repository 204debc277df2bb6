"""A model frame without rows: what the results need when the data stay outside.

:class:`LazyModelFrame` has the attribute names of
:class:`~lme2sm.frame.model_frame.ModelFrame`. Everything that is not n-sized is filled in
(names, patsy designs, the random terms' levels, ``n``, ``p``, the cross-products);
the n-sized attributes (``data``, ``y``, ``offset``, ``weights``, ``X`` and each term's
``codes`` and ``Z``) are ``None``. ``lazy`` is True, so results can tell the two apart.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lme2sm.engine.crossprod import CrossProducts
from lme2sm.errors import RowsNotInMemoryError
from lme2sm.formula import ParsedFormula
from lme2sm.frame.model_frame import RandomTermFrame

if TYPE_CHECKING:
    import patsy

__all__ = ["LazyModelFrame", "RowsNotInMemoryError"]


@dataclass(frozen=True)
class LazyModelFrame:
    """A :class:`~lme2sm.frame.model_frame.ModelFrame` for rows that stay in their source."""

    formula: str
    parsed: ParsedFormula
    n_dropped: int
    response_name: str
    fixed_names: tuple[str, ...]
    fixed_patsy_names: tuple[str, ...]
    dropped_fixed: tuple[str, ...]
    fixed_info: patsy.DesignInfo = field(repr=False, compare=False)
    terms: tuple[RandomTermFrame, ...] = ()
    """Random terms in lme4's order; their ``codes`` and ``Z`` are None."""
    group_columns: dict[str, str] = field(default_factory=dict)
    level_order: dict[str, tuple[str, ...]] = field(default_factory=dict)
    weights_name: str | None = None
    n: int = 0
    """Complete rows used."""
    crossprods: CrossProducts | None = field(default=None, repr=False, compare=False)
    """The engine's sums over all rows (after the rank-deficiency drop)."""
    source: Any = field(default=None, repr=False, compare=False)
    """Where the rows are (:class:`lme2sm.large.sources.Source`)."""
    plan: Any = field(default=None, repr=False, compare=False)
    """How each partition's rows become arrays (:class:`lme2sm.large.plan.ModelPlan`)."""
    keep_columns: tuple[int, ...] = ()
    """Positions in the plan's fixed columns of the columns kept."""
    # n-sized attributes of ModelFrame: absent here
    data: None = None
    y: None = None
    offset: None = None
    weights: None = None
    X: None = None
    lazy: bool = True

    def __reduce__(self):
        """Pickled without patsy's DesignInfos (they refuse pickling): the plan rebuilds
        them from its prototype rows when the frame is loaded
        (:func:`_unpickled_lazy_frame`), so a fit of data beyond memory can be saved."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return (_unpickled_lazy_frame, ({**fields, "fixed_info": None},))

    @property
    def p(self) -> int:
        return len(self.fixed_names)

    @property
    def has_weights(self) -> bool:
        """Prior weights were given (``weights`` itself is None: the values stay outside)."""
        return self.weights_name is not None


def _unpickled_lazy_frame(fields: dict) -> LazyModelFrame:
    """A pickled :class:`LazyModelFrame` with the fixed part's and each term's patsy
    design taken from its plan again (terms in lme4's order: ``plan.term_order``)."""
    plan = fields["plan"]
    designs = plan.designs
    terms = tuple(
        dataclasses.replace(t, info=designs["terms"][i])
        for t, i in zip(fields["terms"], plan.term_order)
    )
    return LazyModelFrame(**{**fields, "fixed_info": designs["X"], "terms": terms})
