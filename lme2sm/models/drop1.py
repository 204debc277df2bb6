"""Single-term deletions, as R's ``drop1`` on lme4 and lmerTest fits: ``lme2sm.drop1(m)``.

(A function, as :func:`lme2sm.anova` of several fits is: it refits, so it sits beside
``lmer`` and ``glmer``, which the result classes cannot import.)

lme4's ``drop1.merMod`` (``test="none"`` or ``"Chisq"``): each term of the scope (by
default R's ``drop.scope``: the fixed terms no other term contains, so marginality is
kept: with ``a * b`` only ``a:b`` can go) is removed from the formula (``update(m, ~ . -
term)``) and the model refitted to the same rows; the table has the ``AIC`` of the model
and of each deletion (lmer fits refitted by ML, as lme4's ``extractAIC`` does with
``refitML``), ``npar`` (the parameters the deletion removes) and, with ``"Chisq"``, the
likelihood-ratio statistic ``LRT`` and ``Pr(Chi)``.

lmerTest's ``drop1.lmerModLmerTest`` (``test="F"``): no refits; the F test that all of a
marginal term's coefficients are zero, with Satterthwaite's (or Kenward-Roger's)
denominator df (lmerTest's ``contestMD`` on the rows of the identity for the term's
columns).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from lme2sm.errors import ArgumentError, DataError
from lme2sm.inference.coef_table import ddf_method
from lme2sm.inference.satterthwaite import ANOVA_COLUMNS, fixed_terms, type1_contrasts
from lme2sm.models.glmer import glmer
from lme2sm.models.glmer_nb import GlmerNbResult, glmer_nb
from lme2sm.models.lmer import lmer, refit_ml

__all__ = ["drop1", "drop_scope", "reduced_formula"]

TESTS = ("none", "Chisq", "F")


def drop_scope(parsed) -> list[str]:
    """R's ``drop.scope``: the labels of the fixed terms that no other term contains.

    >>> from lme2sm.formula import parse
    >>> drop_scope(parse("y ~ a * b + x + (1 | g)"))
    ['x', 'a:b']
    """
    terms = parsed.fixed_part.terms
    sets = [{f.label for f in t.factors} for t in terms]
    return [
        t.label
        for i, t in enumerate(terms)
        if not any(sets[i] <= sets[j] for j in range(len(terms)) if j != i)
    ]


def reduced_formula(parsed, drop: str) -> str:
    """The formula without fixed term ``drop`` (R's ``update(f, ~ . - drop)``); the random
    terms as written.

    >>> from lme2sm.formula import parse
    >>> reduced_formula(parse("y ~ a * b + offset(o) + (x || g)"), "a:b")
    'y ~ a + b + offset(o) + (x || g)'
    """
    fixed = parsed.fixed_part
    parts = [t.label for t in fixed.terms if t.label != drop]
    parts += [f"offset({o.label})" for o in fixed.offsets]
    if not fixed.intercept:
        parts.insert(0, "0")
    elif not parts:
        parts.append("1")
    sources = {t.span: t.source for t in parsed.random_terms}
    parts += [sources[span] for span in sorted(sources)]
    return f"{parsed.response} ~ {' + '.join(parts)}"


def _scope(m: Any, scope) -> list[str]:
    labels = list(m.frame.parsed.fixed_part.labels)
    if scope is None:
        return drop_scope(m.frame.parsed)
    if isinstance(scope, str):
        text = scope.strip()
        scope = (
            [s.strip() for s in text.lstrip("~").split("+")] if text.startswith("~") else [text]
        )
    if not isinstance(scope, list | tuple):
        raise ArgumentError(
            f"scope must be a term label, a list of them or '~ a + b', not {scope!r}"
        )
    scope = list(scope)
    unknown = [s for s in scope if s not in labels]
    if unknown or not all(isinstance(s, str) for s in scope):
        raise ArgumentError(
            f"scope is not a subset of the fixed term labels ({', '.join(labels)}): "
            f"{', '.join(map(repr, unknown or scope))}"
        )
    return scope


def _df(m: Any) -> int:
    return int(m.df() if callable(m.df) else m.df)


def _nobs(m: Any) -> int:
    return int(m.nobs() if callable(m.nobs) else m.nobs)


def _refit(m: Any, formula: str) -> Any:
    """The model of ``formula`` fitted as ``m`` was (lmer: by ML), to ``m``'s rows."""
    frame = m.frame
    if hasattr(m, "family"):
        if isinstance(m, GlmerNbResult):
            return glmer_nb(formula, frame.data, weights=frame.weights, nAGQ=m.nAGQ)
        return glmer(formula, frame.data, m.family, weights=frame.weights, nAGQ=m.nAGQ)
    data, name = getattr(m, "_data", None), frame.weights_name
    if isinstance(data, pd.DataFrame) and (frame.weights is None or name in data.columns):
        # the caller's data (rows with missing values dropped again by the refit)
        weights = None if frame.weights is None else name
    else:
        data, weights = frame.data, frame.weights
    return lmer(formula, data, REML=False, weights=weights, data_name=m.data_name)


def _ml(m: Any) -> Any:
    return m if hasattr(m, "family") or not m.REML else refit_ml(m)


def _deletion(m: Any, term: str) -> tuple[int, float]:
    """``(df, AIC)`` of ``m`` without ``term``; the refit's warnings say which it is."""
    formula = reduced_formula(m.frame.parsed, term)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = _refit(m, formula)
    for w in caught:
        warnings.warn(f"drop1, without {term}: {w.message}", w.category, stacklevel=4)
    if _nobs(fit) != _nobs(m):
        raise DataError(
            f"without {term} the model uses {_nobs(fit)} rows, not {_nobs(m)} (lme4: 'number "
            "of rows in use has changed: remove missing values?'): drop the rows with missing "
            "values in the model's columns first"
        )
    return _df(fit), float(fit.AIC())


def drop1(m: Any, scope=None, test: str = "none", ddf: str = "Satterthwaite") -> pd.DataFrame:
    """R's ``drop1(m, scope, test)`` for an lmer or glmer fit (see the module).

    Parameters
    ----------
    m : LmerResult or GlmerResult
    scope : list of str or str, optional
        Fixed term labels to drop one at a time (``"recipe:temp"``, ``"~ a + b"``); by
        default the marginal terms (R's ``drop.scope``).
    test : {"none", "Chisq", "F"}
        ``"none"``: AIC; ``"Chisq"``: also the likelihood-ratio test (lme4's
        ``drop1.merMod``). ``"F"`` (lmer only): lmerTest's F tests with ``ddf``
        (``"Satterthwaite"`` or ``"Kenward-Roger"``).

    Returns
    -------
    pandas.DataFrame
        lme4: rows ``<none>`` then the terms, columns ``npar``, ``AIC`` (``LRT``,
        ``Pr(Chi)``); lmerTest: rows the terms, columns ``Sum Sq``, ``Mean Sq``,
        ``NumDF``, ``DenDF``, ``F value``, ``Pr(>F)``. ``attrs["heading"]`` is R's.
    """
    from lme2sm.results.glmer import GlmerEstimates
    from lme2sm.results.lmer import LmerEstimates

    if not isinstance(m, LmerEstimates | GlmerEstimates):
        raise ArgumentError(
            f"drop1() takes a fit of lme2sm.lmer or lme2sm.glmer, not {type(m).__name__}"
        )
    key = {t.lower(): t for t in TESTS}.get(str(test).lower()) if isinstance(test, str) else None
    if key is None:
        raise ArgumentError(f"test must be 'none', 'Chisq' or 'F', not {test!r}")
    terms = _scope(m, scope)
    if key == "F":
        return f_table(m, terms, ddf)
    full = _ml(m)
    rows = [(_df(full), float(full.AIC()))] + [_deletion(m, t) for t in terms]
    df = np.array([r[0] for r in rows], dtype=float)
    aic = np.array([r[1] for r in rows])
    npar = df[0] - df
    npar[0] = np.nan
    table = pd.DataFrame({"npar": npar, "AIC": aic}, index=["<none>", *terms])
    if key == "Chisq":
        dev = aic - 2 * df
        lrt = dev - dev[0]
        lrt[0] = np.nan
        p = np.full(len(rows), np.nan)
        p[1:] = stats.chi2.sf(lrt[1:], npar[1:])
        table["LRT"], table["Pr(Chi)"] = lrt, p
    table.attrs["heading"] = f"Single term deletions\n\nModel:\n{m.formula}"
    return table


def f_table(m: Any, terms: list[str], ddf: str) -> pd.DataFrame:
    """lmerTest's ``drop1(m, ddf = ddf)``: F tests of marginal terms' coefficients."""
    if hasattr(m, "family"):
        raise ArgumentError("test='F' is lmerTest's, for lmer fits; glmer fits have 'Chisq'")
    method = ddf_method(ddf)
    if method not in ("Satterthwaite", "Kenward-Roger"):
        raise ArgumentError(f"ddf must be 'Satterthwaite' or 'Kenward-Roger', not {ddf!r}")
    marginal = drop_scope(m.frame.parsed)
    if any(t not in marginal for t in terms):
        raise ArgumentError(
            f"only marginal terms can be dropped from the model (lmerTest): "
            f"{', '.join(t for t in terms if t not in marginal)} is contained in another term"
        )
    if m.frame.dropped_fixed:
        raise ArgumentError(
            "F tests of single-term deletions are not implemented for a rank-deficient "
            f"fixed part (dropped columns: {', '.join(m.frame.dropped_fixed)}); use test='Chisq'"
        )
    info = fixed_terms(m)
    p = m.frame.p
    if p <= 1 or len(info) <= 1:
        contrasts = type1_contrasts(m.frame.X, info)
    else:
        eye = np.eye(p)
        contrasts = {t.label: eye[list(t.columns)] for t in info}
    if method == "Kenward-Roger":
        if not m.REML:
            raise ArgumentError("Kenward-Roger's method is only available for REML fits")
        from lme2sm.inference.kenward_roger import kenward_roger_model

        model = kenward_roger_model(m)
    else:
        from lme2sm.inference.satterthwaite import satterthwaite_model

        model = satterthwaite_model(m)
    columns = ANOVA_COLUMNS
    table = pd.DataFrame([model.contest_md(contrasts[t]) for t in terms], index=terms)
    table = table[columns] if len(terms) else pd.DataFrame(columns=columns)
    name = "Satterthwaite's" if method == "Satterthwaite" else "Kenward-Roger's"
    table.attrs["heading"] = f"Single term deletions using {name} method:\n\nModel:\n{m.formula}"
    return table
