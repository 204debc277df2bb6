"""Showing a translation: plain statsmodels code, and a term-by-term explanation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lme2sm.faces.statsmodels_fit import fit_steps
from lme2sm.formula.patsy_text import statsmodels_column

if TYPE_CHECKING:
    from lme2sm.faces.translation_data import TranslationData


def _q(text: str) -> str:
    return repr(text)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _comment(text: str) -> list[str]:
    """``text`` as comment lines: every line of a multi-line formula stays a comment."""
    return ["# " + line.rstrip() for line in text.splitlines() or [""]]


def _rename_lines(used: list[str]) -> list[str]:
    """Rename the columns whose names the formula's namespace uses (``np``, ``C``)."""
    renamed = {c: statsmodels_column(c) for c in used if statsmodels_column(c) != c}
    if not renamed:
        return []
    return [
        "# patsy looks the formula's names up in the data first: a column named like a",
        "# function or module it calls (np, C, ...) would hide it, so it gets a name of its own",
        f"df = df.rename(columns={renamed!r})",
    ]


def _prep_lines(t: TranslationData) -> list[str]:
    used = list(t.parsed.variables())
    lines = [
        "# lme4 drops rows with a missing value in any variable the model uses (na.omit)",
        f"df = data[{used!r}].dropna().copy()",
        *_rename_lines(used),
    ]
    for name, col in t.group_columns.items():
        factors = t.created_columns.get(col)
        col = statsmodels_column(col)
        factors = factors and tuple(statsmodels_column(f) for f in factors)
        if factors is None:
            lines.append(f"df[{_q(col)}] = df[{_q(col)}].astype(str)  # grouping levels as text")
        elif len(factors) == 1:
            lines.append(
                f"df[{_q(col)}] = df[{_q(factors[0])}].astype(str)  # {_one_line(name)} as levels"
            )
        else:
            joined = ' + ":" + '.join(f"df[{_q(f)}].astype(str)" for f in factors)
            lines.append(f"df[{_q(col)}] = {joined}  # {_one_line(name)}: level combinations")
    if t.group_kind == "single":
        lines.append(f"df[{_q(t.groups)}] = 1  # crossed factors: one group holds every row")
    elif t.group_kind == "components":
        cols = [statsmodels_column(t.group_columns[p.term.group]) for p in t.placements]
        cols = list(dict.fromkeys(cols))
        lines += [
            "# groups = connected components: rows sharing a level of any grouping factor",
            f"df[{_q(t.groups)}] = range(len(df))",
            "while True:",
            f"    before = df[{_q(t.groups)}].copy()",
            f"    for col in {cols!r}:",
            f"        df[{_q(t.groups)}] = df.groupby(col)[{_q(t.groups)}].transform('min')",
            f"    if df[{_q(t.groups)}].equals(before):",
            "        break",
        ]
    return lines


def _uses_helpers(t: TranslationData) -> bool:
    texts = [t.fixed_formula, t.re_formula, *t.vc_formula.values()]
    return any("r_poly" in text for text in texts)


def _model_lines(t: TranslationData) -> list[str]:
    args = [_q(t.fixed_formula), "df", f"groups={_q(t.groups)}", f"re_formula={_q(t.re_formula)}"]
    if _uses_helpers(t):
        # statsmodels 0.14's mixedlm does not look in the calling namespace by itself
        args.append("eval_env=patsy.EvalEnvironment.capture()")
    if t.vc_formula:
        inner = ", ".join(f"{_q(k)}: {_q(v)}" for k, v in t.vc_formula.items())
        args.append(f"vc_formula={{{inner}}}")
    if t.use_sparse:
        args.append("use_sparse=True")
    return ["model = smf.mixedlm(", *(f"    {a}," for a in args), ")"]


def _free_lines(t: TranslationData) -> list[str]:
    if len(t.re_blocks) <= 1:
        return []
    k = t.k_re
    rows = []
    for i in range(k):
        row = [1.0 if any(i in b and j in b for b in t.re_blocks) else 0.0 for j in range(k)]
        rows.append(row)
    return [
        "# separate lme4 terms on the groups factor: pin their cross-covariances at zero",
        "free = MixedLMParams.from_components(",
        f"    fe_params=np.ones({len(t.fixed_names)}),",
        f"    cov_re=np.array({rows!r}),",
        f"    vcomp=np.ones({len(t.vc_formula)}),",
        ")",
    ]


def _fit_lines(t: TranslationData) -> list[str]:
    extra = ", free=free" if len(t.re_blocks) > 1 else ""
    reml = "True" if t.reml else "False"
    steps = [method for method, _start in fit_steps(t)]
    return [
        "# statsmodels can stop short and still say 'converged' (or fail from its default",
        "# start): try several optimisers, each from the best point so far, keep the best",
        "result = None",
        f"for method in {steps!r}:",
        "    start = None if result is None else result.params_object",
        "    try:",
        f"        candidate = model.fit(reml={reml}, method=method, start_params=start{extra})",
        "    except (ValueError, np.linalg.LinAlgError):  # e.g. a singular matrix",
        "        continue",
        "    if not np.isfinite(candidate.llf):  # a failed fit can report llf = inf",
        "        continue",
        "    if result is None or candidate.llf > result.llf:",
        "        result = candidate",
    ]


def translation_code(t: TranslationData) -> str:
    """Runnable Python: with ``data`` bound, builds the model and leaves the fit in ``result``."""
    imports = ["import numpy as np", "import statsmodels.formula.api as smf"]
    if len(t.re_blocks) > 1:
        imports.append("from statsmodels.regression.mixed_linear_model import MixedLMParams")
    if _uses_helpers(t):
        from lme2sm.frame.rfunctions import SOURCE

        imports.insert(1, "import patsy")
        imports += ["", "", "# R's poly(): the formula calls these", *SOURCE.splitlines(), ""]
    body = [
        *_comment(f"lme4: {t.formula}"),
        *imports,
        "",
        *_prep_lines(t),
        "",
        *_model_lines(t),
        *_free_lines(t),
        *_fit_lines(t),
    ]
    return "\n".join(body) + "\n"


def translation_explanation(t: TranslationData) -> str:
    """Term-by-term: lme4 term → statsmodels slot → why."""
    lines = [f"lme4 formula: {t.formula}", ""]
    lines.append(f"fixed part  {t.parsed.fixed}")
    lines.append(f"  → formula={t.fixed_formula!r}")
    names = ", ".join(r for _, r in t.fixed_names)
    lines.append(f"    fixed-effect columns as lme4 names them: {names}")
    lines.append("")
    if t.group_kind == "factor":
        why = (
            f"every grouping factor nests inside {t.groups!r}, so its {t.n_groups} levels are "
            "independent groups (finer groups make MixedLM faster)"
        )
    elif t.group_kind == "single":
        why = "the grouping factors are crossed, so all rows must form one group"
    else:
        why = (
            f"the rows split into {t.n_groups} independent sets that share no level of any "
            "grouping factor (connected components); no single factor gives that partition"
        )
    lines.append(f"groups={t.groups!r}: {why}")
    if t.re_formula == "0":
        lines.append('re_formula="0": no term is grouped by the partition itself')
    lines.append("")
    for p in t.placements:
        head = p.lme4_text
        if p.approximated_from:
            head += f"   (split from {p.approximated_from} because approximate=True)"
        lines.append(head)
        if p.slot == "re_formula":
            lines.append(
                f"  → re_formula={t.re_formula!r} (columns {', '.join(r for _, r in p.columns)})"
            )
        else:
            lines.append(f"  → vc_formula[{p.key!r}] = {p.statsmodels_text!r}")
        lines.append(f"    why: {p.reason}")
    if len(t.re_blocks) > 1:
        lines += [
            "",
            "fit(free=...): the terms on the groups factor are separate in lme4, so their "
            "cross-covariances are pinned at zero",
        ]
    if t.n_dropped:
        lines += ["", f"{t.n_dropped} rows with missing values were dropped first, as lme4 does"]
    return "\n".join(lines) + "\n"
