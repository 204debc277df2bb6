"""``lme2sm.mixedlm``: a drop-in for ``statsmodels.formula.api.mixedlm`` that reads lme4 terms."""

from __future__ import annotations

import functools
from typing import Any

import pandas as pd

from lme2sm import arguments
from lme2sm.errors import ArgumentError, Lme2smError
from lme2sm.faces.translation import translate
from lme2sm.formula import parse
from lme2sm.frame import design

_OWN = ("groups", "re_formula", "vc_formula")


def mixedlm(formula: str, data: pd.DataFrame, *args: Any, **kwargs: Any):
    """Build an unfitted statsmodels ``MixedLM`` from a formula.

    A formula without ``( ... | group)`` terms goes to ``smf.mixedlm`` unchanged, with
    the caller's arguments. With lme4 terms the model is translated (see
    :func:`lme2sm.translate`) and the caller may not also pass ``groups``,
    ``re_formula`` or ``vc_formula``: the terms already say what those are, and
    silently merging the two would fit a different model.
    """
    if isinstance(formula, str) and "|" not in formula or not parse(formula).random_terms:
        # no lme4 term: exactly statsmodels, formula evaluated in the caller's namespace
        kwargs["eval_env"] = _caller_env(kwargs.get("eval_env", 0))
        return _statsmodels_mixedlm(formula, data, *args, **kwargs)
    parsed = parse(formula)
    if args:
        raise ArgumentError(
            "with lme4 random terms in the formula, pass no further positional arguments "
            "(statsmodels' third positional argument is groups, which the terms already give)"
        )
    clashes = [k for k in _OWN if k in kwargs]
    if clashes:
        raise ArgumentError(_clash_message(parsed, clashes, kwargs))
    approximate = arguments.flag("approximate", kwargs.pop("approximate", False))
    translation = translate(parsed, data, approximate=approximate)
    import statsmodels.formula.api as smf

    extra = {k: v for k, v in kwargs.items() if k != "eval_env"}
    model_kwargs = {**translation.model_kwargs(), **extra}
    model = smf.mixedlm(
        translation.fixed_formula, translation.data, eval_env=design.environment(), **model_kwargs
    )
    model.lme2sm_translation = translation
    free = translation.free()
    if free is not None:
        # separate lme4 terms on the groups factor: their cross-covariances stay at zero
        # unless the caller passes free= themselves (gradient methods honour the mask)
        model.fit = functools.partial(type(model).fit, model, free=free)
    return model


def _statsmodels_mixedlm(formula: str, data: Any, *args: Any, **kwargs: Any):
    """``smf.mixedlm`` itself, its refusals (a missing ``groups`` column, a ``groups`` of
    another length, data that is no frame) as ArgumentErrors with statsmodels' words."""
    import statsmodels.formula.api as smf

    groups = kwargs.get("groups", args[0] if args else None)
    if isinstance(groups, str) and isinstance(data, pd.DataFrame) and groups not in data:
        raise ArgumentError(f"groups={groups!r} is not a column of the data")
    try:
        return smf.mixedlm(formula, data, *args, **kwargs)
    except Lme2smError:
        raise
    except Exception as exc:  # noqa: BLE001 - statsmodels' and patsy's own errors
        raise ArgumentError(
            f"statsmodels' mixedlm refused the arguments: {type(exc).__name__}: {exc}"
        ) from exc


def _caller_env(eval_env: Any):
    """statsmodels' ``eval_env`` as seen from the caller of :func:`mixedlm`: an integer
    counts frames up from the caller (0, the default, is the caller's own namespace)."""
    if isinstance(eval_env, bool) or not isinstance(eval_env, int) or eval_env < 0:
        return eval_env  # -1 (an empty environment) or an EvalEnvironment: as given
    return design.caller_environment(eval_env + 2)


def _clash_message(parsed, clashes: list[str], kwargs: dict[str, Any]) -> str:
    terms = ", ".join(f"({t.text})" for t in parsed.random_terms)
    lines = [
        f"the formula's lme4 terms {terms} already define {', '.join(clashes)}; "
        "pass either lme4 terms or statsmodels' arguments, not both."
    ]
    if "groups" in kwargs:
        lines.append(
            "groups= is statsmodels' grouping for a (... | g) term: with lme4 terms, name "
            "every grouping factor in a term instead, e.g. (1 | student_id) next to (1 | classroom)."
        )
    vc = kwargs.get("vc_formula")
    if isinstance(vc, dict):
        for key, value in vc.items():
            if not isinstance(value, str) or "C(" not in value:
                lines.append(
                    f"vc_formula={{{key!r}: {value!r}}} is not a statsmodels variance component: "
                    f"each value is a formula such as '0 + C({key})', one column per level; "
                    f"in lme4 that is the term (1 | {key})."
                )
    if "re_formula" in kwargs and not isinstance(kwargs["re_formula"], str):
        lines.append(
            "re_formula must be a formula string such as '~x' or '1' (one covariance matrix for "
            "the groups factor), not a dict; in lme4 that is the term (x | group)."
        )
    lines.append(
        "To see the statsmodels arguments the terms give, use lme2sm.translate(formula, data).code()."
    )
    return "\n".join(lines)
