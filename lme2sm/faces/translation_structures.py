"""What MixedLM can hold of glmmTMB's covariance structures (``us()``, ``diag()``,
``cs()``, ``ar1()``), for :func:`lme2sm.translate`.

MixedLM has two kinds of random-effects covariance: one unstructured matrix per group
(``re_formula``) and independent variances (``vc_formula``). So

* ``us(x | g)`` is the plain term ``(x | g)``;
* ``diag(x | g)`` is exactly ``(1 | g) + (0 + x | g)``: independent variances, one
  variance component per column (as lme4's ``(x || g)``);
* ``cs()`` and ``ar1()`` cannot be expressed (their correlations are tied to one
  parameter): refused with a :class:`~lme2sm.NotExpressibleError` naming the term and
  the nearest model MixedLM can fit instead.

:func:`is_categorical` (is a random term's effect a factor?) is shared with glmer's
translation (``faces/glmer_translate.py``), which places the structures the same way.
"""

from __future__ import annotations

import pandas as pd

from lme2sm.errors import NotExpressibleError
from lme2sm.formula.model import LinearPart, RandomTerm, Term
from lme2sm.formula.patsy_text import part_to_patsy
from lme2sm.frame import design

__all__ = ["is_categorical", "plain_terms"]

_WHY = {
    "cs": "compound symmetry (one SD per column, one correlation shared by every pair)",
    "ar1": "AR(1) correlations over its columns (one SD, corr(i, j) = rho^|i - j|)",
}


def plain_terms(terms: tuple[RandomTerm, ...], frame: pd.DataFrame, categorical) -> list:
    """The random terms as plain lme4 terms MixedLM's translation places: ``us()`` as
    written, ``diag()`` one scalar term per column; ``cs()``/``ar1()`` refused.
    ``categorical(term, frame)`` says whether an effect is a factor."""
    out: list[RandomTerm] = []
    for term in terms:
        structure = term.covariance
        if structure == "us":
            out.append(_plain(term, term.effects_part))
        elif structure == "diag":
            out.extend(_diag_columns(term, frame, categorical))
        else:
            has_factor = any(categorical(t, frame) for t in term.effects_part.terms)
            diag = "" if has_factor else f", or diag({term.text}) for independent variances"
            raise NotExpressibleError(
                term.term_text,
                f"statsmodels MixedLM has unstructured covariance matrices (re_formula) and "
                f"independent variances (vc_formula), not {_WHY[structure]}",
                f"({term.text}), an unstructured covariance, which contains every "
                f"{structure} one (with more parameters){diag}; lme2sm.lmer fits the "
                "formula as written",
            )
    return out


def is_categorical(term: Term, frame: pd.DataFrame) -> bool:
    """Whether the effect ``term`` (``x``, ``f``, ``x:f``) has a factor in ``frame``."""
    part = LinearPart(False, (term,))
    built = design.build(frame, [part], where=[f" for {part_to_patsy(part)!r}"])[1][0]
    return any(fi.type == "categorical" for fi in built.info.factor_infos.values())


def _plain(term: RandomTerm, part: LinearPart) -> RandomTerm:
    return RandomTerm(part, term.group, term.group_factors, term.span, term.source, "", None)


def _diag_columns(term: RandomTerm, frame: pd.DataFrame, categorical) -> list[RandomTerm]:
    """``diag(x + z | g)`` as ``(1 | g)``, ``(0 + x | g)``, ``(0 + z | g)``."""
    factors = [t.label for t in term.effects_part.terms if categorical(t, frame)]
    if factors:
        raise NotExpressibleError(
            term.term_text,
            f"its effect {factors[0]} is a factor: diag() gives each of its columns its own "
            "variance, and MixedLM's variance components take one formula per variance",
            f"one numeric indicator column per level of {factors[0]}, each in its own "
            f"(0 + indicator | {term.group}) term",
        )
    out = [_plain(term, LinearPart(True))] if term.intercept else []
    out += [_plain(term, LinearPart(False, (t,))) for t in term.effects_part.terms]
    return out
