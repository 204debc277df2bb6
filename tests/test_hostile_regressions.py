"""One named test per failure class the fuzz suite (tests/fuzz) found, each the smallest
case that failed before #23's fixes: a raw exception escaped, a wrong column was read,
or lme2sm's own text of a formula did not read back."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

import lme2sm
from lme2sm import DataError
from lme2sm.formula import expanded_text, parse
from lme2sm.formula.model import r_name
from lme2sm.formula.patsy_text import name_to_patsy


def _data(n: int = 12, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "b": rng.integers(0, 2, n),
            "g": np.tile(["a", "b", "c"], n // 3),
        }
    )


def _quiet(call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call()


@pytest.mark.parametrize(
    "weights, words",
    [
        (np.array([]), "weights has 0 values for 12 rows"),  # was pandas' ValueError
        (np.ones((12, 2)), "one value per row"),
        (np.ones(12) + 1j, "real numbers"),
    ],
)
def test_weights_of_the_wrong_shape_or_type_are_data_errors(weights, words):
    for fit in (lme2sm.lmer, lme2sm.glmer):
        response = "y" if fit is lme2sm.lmer else "b"
        with pytest.raises(DataError, match=words):
            _quiet(lambda fit=fit, r=response: fit(f"{r} ~ x + (1 | g)", _data(), weights=weights))


def test_a_column_name_with_a_line_break_fits():
    """patsy's tokenizer failed an assertion on Q("a<newline>b") with a raw line break."""
    data = _data().rename(columns={"x": "a\nb", "g": "g\th"})
    assert name_to_patsy("a\nb") == 'Q("a\\nb")'
    model = _quiet(lambda: lme2sm.lmer("y ~ `a\\nb` + (1 | `g\\th`)", data))
    assert list(model.fixef().index) == ["(Intercept)", "`a\\nb`"]


def test_a_full_width_name_is_not_read_as_its_ascii_twin():
    """Python reads the identifier ｘ as x (NFKC), so statsmodels' formula read column x."""
    data = _data().assign(**{"\uff58": np.arange(12.0)})
    assert name_to_patsy("\uff58") == 'Q("\uff58")'
    t = _quiet(lambda: lme2sm.translate("y ~ \uff58 + (1 | g)", data))
    fitted = _quiet(lambda: t.model().fit())
    ours = _quiet(lambda: lme2sm.lmer("y ~ \uff58 + (1 | g)", data))
    assert fitted.params['Q("\uff58")'] == pytest.approx(ours.fixef()["\uff58"], abs=1e-3)


def test_reml_with_as_many_fixed_effects_as_rows_is_a_data_error():
    """It divided by n - p = 0 (ZeroDivisionError); lme4 fails too ("objective in x0
    returns NA"); ML fits, as lme4's does."""
    data = _data().assign(x=[f"v{i}" for i in range(12)])
    with pytest.raises(DataError, match="REML needs more observations than fixed effects"):
        _quiet(lambda: lme2sm.lmer("y ~ x + (1 | g)", data))


def test_a_backticked_parenthesis_is_a_name():
    """`)` after | was taken for the closing parenthesis: 'no grouping factor after |'."""
    parsed = parse("y ~ x + (1 | `)`:`(`) + (1 | `,`)")
    assert [t.group_factors for t in parsed.random_terms] == [(")", "("), (",",)]
    assert parse("y ~ f + `(`").fixed_part.labels == ("f", "`(`")


@pytest.mark.parametrize("name", ["T", "F", ".", "a\\b", "a`b", "a\nb", "a\x01b"])
def test_formula_text_reads_back_as_the_same_formula(name):
    """lme2sm wrote T, F and . bare (refused when read back) and a\\b unescaped."""
    parsed = parse(f"y ~ {r_name(name)} + (1 | {r_name(name)})")
    again = parse(expanded_text(parsed))
    assert again.fixed_part.variables() == (name,)
    assert again.random_terms[0].group == name


def test_a_covariate_too_large_to_square_is_a_data_error():
    """1e300 made the engine's triangular solve raise ValueError (infs or NaNs)."""
    data = _data().assign(x=np.tile([-1e300, 1.0, 1e-300, 1e300], 3))
    for formula in ("y ~ x + (1 | g)", "y ~ 1 + (x | g)"):
        with pytest.raises(DataError, match="x.* reaches 1e\\+300"):
            _quiet(lambda f=formula: lme2sm.lmer(f, data, REML=False))
    with pytest.raises(DataError, match="x reaches 1e\\+300"):
        _quiet(lambda: lme2sm.glmer("b ~ x + (1 | g)", data))


def test_saturated_glmer_is_a_fit_error():
    data = pd.DataFrame(
        {
            "y": [1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1],
            "x": [1.3, 0.94, -0.7, -1.26, -0.62, 0.04, -2.3, -0.2, -1.24, -0.73, -0.54, -0.31],
            "g": list("aabbbaaaacbb"),
        }
    )
    with pytest.raises(lme2sm.errors.FitError, match="Downdated VtV is not positive definite"):
        _quiet(lambda: lme2sm.glmer("y ~ factor(x) + (1 | g)", data, family="poisson"))


# ------------------------------------------ round 2: CLI, Parquet, polars, Dask (#23)


def _cli(argv):
    import contextlib
    import io

    from lme2sm import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(argv)
    return status, err.getvalue()


@pytest.mark.parametrize("name", ["x" * 300 + ".csv", "a\x00b.csv"])
def test_cli_unreadable_path_is_one_error_line(tmp_path, name):
    """Before: a name too long (OSError ENAMETOOLONG) and a NUL in the path (ValueError
    'embedded null byte', from pandas) escaped as tracebacks."""
    status, err = _cli(["fit", str(tmp_path / name), "y ~ x + (1 | g)"])
    assert status == 2
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("lme2sm: error: cannot read ")


def test_cli_without_a_command_ends_with_an_error_line():
    """Before: the help text, exit 2, and no line saying what was wrong."""
    status, err = _cli([])
    assert status == 2
    assert err.splitlines()[-1] == "lme2sm: error: a command is needed: example, fit or translate"


def _parquet(path, frame):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)


def _quiet_large(formula, source):
    import contextlib
    import io

    with contextlib.redirect_stderr(io.StringIO()):
        return _quiet(lambda: lme2sm.lmer(formula, source))


@pytest.mark.parametrize("content", [b"y,x,g\n1,2,a\n", b"\x00\x01junk", b""])
def test_a_file_that_is_not_parquet_is_a_data_error(tmp_path, content):
    """Before: pyarrow's ArrowInvalid ('Parquet magic bytes not found in footer')."""
    pytest.importorskip("pyarrow")
    path = tmp_path / "data.parquet"
    path.write_bytes(content)
    with pytest.raises(DataError, match="cannot read .* as a Parquet file"):
        _quiet_large("y ~ x + (1 | g)", str(path))


def test_junk_beside_parquet_files_is_a_data_error(tmp_path):
    _parquet(tmp_path / "a.parquet", _data())
    (tmp_path / "notes.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="notes.parquet"):
        _quiet_large("y ~ x + (1 | g)", str(tmp_path))


def test_parquet_files_without_a_model_column_are_a_data_error(tmp_path):
    """Before: pandas' KeyError "['x'] not in index" from the second file's batches."""
    d = _data()
    _parquet(tmp_path / "a.parquet", d)
    _parquet(tmp_path / "b.parquet", d.rename(columns={"x": "z"}))
    with pytest.raises(DataError, match="has no column 'x'"):
        _quiet_large("y ~ x + (1 | g)", str(tmp_path))


def test_parquet_files_with_another_type_of_a_column_are_a_data_error(tmp_path):
    d = _data()
    _parquet(tmp_path / "a.parquet", d)
    _parquet(tmp_path / "b.parquet", d.assign(x=d["x"].astype(str)))
    with pytest.raises(
        DataError, match="the column 'x' is (large_)?string in the Parquet file .* but double"
    ):
        _quiet_large("y ~ x + (1 | g)", str(tmp_path))


def test_parquet_integers_in_one_file_and_doubles_in_another_fit_as_numbers(tmp_path):
    d = _data(24)
    d["b"] = d["b"].astype(float)
    _parquet(tmp_path / "a.parquet", d.iloc[:12])
    _parquet(tmp_path / "b.parquet", d.iloc[12:].assign(b=d["b"].iloc[12:].astype("int64")))
    large = _quiet_large("y ~ b + (1 | g)", str(tmp_path))
    small = _quiet(lambda: lme2sm.lmer("y ~ b + (1 | g)", d))
    np.testing.assert_allclose(large.fixef(), small.fixef(), rtol=1e-8)
    assert large.logLik() == pytest.approx(small.logLik(), rel=1e-10)


@pytest.mark.parametrize("star", ["*", "^x$", "^.*$"])
def test_polars_columns_named_like_patterns_are_columns(star):
    """Before: polars' select read a column named "*" as every column (DuplicateError);
    "^...$" would have been a regular expression."""
    pl = pytest.importorskip("polars")
    d = _data(24).rename(columns={"x": star})
    formula = f"y ~ {r_name(star)} + (1 | g)"
    large = _quiet_large(formula, pl.from_pandas(d).lazy())
    small = _quiet(lambda: lme2sm.lmer(formula, d))
    np.testing.assert_allclose(large.fixef(), small.fixef(), rtol=1e-8)
    assert list(large.fixef().index) == list(small.fixef().index)


def _zero_rows_sources(tmp_path):
    d = _data().iloc[:0]
    out = []
    try:
        import polars as pl

        out.append(pl.from_pandas(d).lazy())
    except ImportError:
        pass
    try:
        _parquet(tmp_path / "z.parquet", d)
        out.append(str(tmp_path / "z.parquet"))
    except pytest.skip.Exception:
        pass
    return out


def test_zero_rows_beyond_memory_are_a_data_error(tmp_path):
    """Before: an AttributeError ('NoneType' object has no attribute 'n_rows') when no
    batch came, an IndexError when the first rows were empty."""
    sources = _zero_rows_sources(tmp_path)
    if not sources:
        pytest.skip("neither polars nor pyarrow is installed")
    for source in sources:
        with pytest.raises(DataError):
            _quiet_large("y ~ x + (1 | g)", source)


def test_text_response_without_values_is_a_data_error():
    """Before: an IndexError building the message's example value."""
    from lme2sm.frame.data_prep import check_response

    with pytest.raises(DataError, match="must be numeric, but it holds object values;"):
        check_response(pd.DataFrame({"y": pd.Series([], dtype=object)}), ["y"])


def test_fitted_results_pickle_and_load_with_the_same_numbers():
    """Before: pickle.dumps of any lmer or glmer result raised patsy's NotImplementedError
    ('Sorry, pickling not yet supported'): the model frame held patsy DesignInfos, and a
    used result its statsmodels view too."""
    import pickle

    from lme2sm.datasets import load

    sleep = load("sleepstudy")
    m = _quiet(lambda: lme2sm.lmer("Reaction ~ Days + (Days | Subject)", sleep))
    m.summary()
    _ = m.statsmodels
    g = _quiet(
        lambda: lme2sm.glmer(
            "cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp")
        )
    )
    for fit, newdata in ((m, sleep.head(4)), (g, load("cbpp").head(4))):
        back = pickle.loads(pickle.dumps(fit))
        assert type(back) is type(fit)
        assert back.logLik() == fit.logLik()
        pd.testing.assert_series_equal(back.fixef(), fit.fixef(), check_exact=True)
        pd.testing.assert_frame_equal(back.VarCorr(), fit.VarCorr(), check_exact=True)
        pd.testing.assert_series_equal(
            back.predict(newdata), fit.predict(newdata), check_exact=True
        )
        assert back.summary() == fit.summary()


def test_parquet_grouping_floats_of_any_size_are_the_in_memory_levels(tmp_path):
    """Before: a float grouping column holding -1e300 and 1e-300 raised KeyError
    '-1e+300' (the second pass wrote astype(str)'s text, the first R's)."""
    d = _data(12).assign(g=np.tile([-1e300, 1e-300, 1.0], 4))
    _parquet(tmp_path / "a.parquet", d.iloc[:6])
    _parquet(tmp_path / "b.parquet", d.iloc[6:])
    large = _quiet_large("y ~ x + (1 | g)", str(tmp_path))
    small = _quiet(lambda: lme2sm.lmer("y ~ x + (1 | g)", d))
    assert list(large.ranef()["g"].index) == list(small.ranef()["g"].index)
    assert large.logLik() == pytest.approx(small.logLik(), rel=1e-10)


def test_statsmodels_view_failure_inside_statsmodels_is_a_fit_error(monkeypatch):
    """#23, found by the fuzz suite: crossed terms on text columns made MixedLM's own
    linear algebra fail (LinAlgError, a matmul ValueError) inside ``.statsmodels``; such a
    failure reaches the user as one lme2sm error naming what failed, not a traceback."""
    import warnings

    import numpy as np
    import pandas as pd
    import pytest

    import lme2sm
    from lme2sm.errors import FitError
    from lme2sm.faces import statsmodels_view

    rng = np.random.default_rng(3)
    d = pd.DataFrame({"y": rng.normal(size=40), "g": np.repeat(list("abcd"), 10)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lme2sm.lmer("y ~ 1 + (1 | g)", d)

    def broken(_m):
        raise np.linalg.LinAlgError("SVD did not converge")

    monkeypatch.setattr(statsmodels_view, "results_at", broken)
    with pytest.raises(FitError, match=r"LinAlgError: SVD did not converge"):
        _ = m.statsmodels


@pytest.mark.parametrize("mix", [[b"a", None, b"b", b"c"], [b"a", b"b", b"c", b"a"]])
def test_anova_of_an_object_column_with_bytes_equals_the_decoded_text(mix):
    """Before: NotImplementedError 'type III contrasts: no reduced-rank column for
    ['ma', 'mb']' (satterthwaite labelled levels str(b'a') = "b'a'", fixef says 'a').
    Bytes beside numbers or text (``[1, b"a", 2, b"b"]``, ``[True, b"x", 1, "a"]``, tested
    here before) are now refused: test_object_column_mixing_kinds_is_one_data_error_naming_it."""
    rng = np.random.default_rng(1)
    n = 40
    d = pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n)})
    d["m"] = pd.Series((mix * 20)[:n], dtype=object)
    d["g"] = np.repeat(list("abcde"), 8)
    text = d.copy()
    text["m"] = [v.decode() if isinstance(v, bytes) else v for v in d["m"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = lme2sm.lmer("y ~ x + m + (1 | g)", d).anova()
        want = lme2sm.lmer("y ~ x + m + (1 | g)", text).anova()
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-10)


# ------------------------------------------------ object columns R cannot hold as one factor

_MIXES = {
    "str and bytes": (["a", b"a", "b", b"b"], "mixes bytes with other values"),
    "int and bytes": ([1, b"1", 2, b"2"], "mixes bytes with other values"),
    "float and bytes": ([1.5, b"x", 2.5, b"y"], "mixes bytes with other values"),
    "bool, bytes, int and str": ([True, b"x", 1, "a"], "mixes bytes with other values"),
    "str and int, same text": (["1", 1, "2", 2], "R reads as the same level '1'"),
    "bool and str, same text": ([True, "True", False, "False"], "same level 'True'"),
}
_ROLES = {
    "group": "y ~ x + (1 | m)",
    "fixed": "y ~ x + m + (1 | g)",
    "slope": "y ~ x + (m | g)",
    "nested": "y ~ x + (1 | g/m)",
}


def _mixed_frame(values) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 40
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "g": rng.choice(list("abcd"), n),
            "m": pd.Series([values[i % len(values)] for i in range(n)], dtype=object),
        }
    )


@pytest.mark.parametrize("role", sorted(_ROLES))
@pytest.mark.parametrize("mix", sorted(_MIXES))
def test_object_column_mixing_kinds_is_one_data_error_naming_it(mix, role):
    """Before: a fit, then raw TypeErrors ('<' not supported between 'str' and 'bytes')
    from mixedlm, InvalidIndexError from predict, or patsy's 'mismatch between
    column_names and columns coded' as a DataError."""
    values, words = _MIXES[mix]
    data = _mixed_frame(values)
    for call in (lme2sm.lmer, lme2sm.translate, lme2sm.mixedlm):
        with pytest.raises(DataError, match=f"the column 'm' .*{re.escape(words)}"):
            call(_ROLES[role], data)


def test_object_grouping_column_of_numbers_and_text_fits_and_translates():
    """101 and '102a' print differently: one factor of text levels, as R's factor() has;
    statsmodels gets level strings, so it can sort its groups (before: TypeError)."""
    data = _mixed_frame([101, "102a", 103, "x"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lme2sm.lmer("y ~ x + (1 | m)", data)
        model = lme2sm.mixedlm("y ~ x + (1 | m)", data)
    assert list(m.ranef()["m"].index) == ["101", "102a", "103", "x"]
    assert sorted(model.group_labels) == ["101", "102a", "103", "x"]
    assert np.isfinite(m.predict(data.head(4))).all()


def test_object_grouping_column_of_tuples_and_text_reaches_statsmodels_as_text():
    data = _mixed_frame([(1,), (2,), "a", "b"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = lme2sm.mixedlm("y ~ x + (1 | m)", data)
    assert sorted(model.group_labels) == ["(1,)", "(2,)", "a", "b"]


# -------------------------------------- found by LME2SM_FUZZ=long (2026-12-07), not yet fixed
# Both fixes are in files other helpers own (listed in the round-2 report); each test is a
# strict xfail, so it fails as soon as the fix lands and the marker must go.


def _twelve_rows() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "y": rng.normal(size=12),
            "x": [f"s{i}" for i in range(12)],
            "g": list("bcbacccaccbc"),
            "z": np.zeros(12),
        }
    )


def test_polars_fit_with_as_many_fixed_effects_as_rows_is_a_data_error():
    """In memory: DataError 'REML needs more observations than fixed effects'. Beyond
    memory (polars, Dask): numpy's LinAlgError or a ZeroDivisionError in the driver."""
    pl = pytest.importorskip("polars")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match="REML needs more observations than fixed"):
            lme2sm.lmer("y ~ x + (1 | g)", pl.from_pandas(_twelve_rows()), progress=False)


def test_anova_of_a_term_whose_columns_were_all_dropped():
    """z is all zeros, so its column is dropped as aliased; anova() handed contest_md an
    empty L and raised IndexError. lmerTest keeps the term as a row of NAs ("Missing
    cells for: z"), beside the other terms' tests."""
    data = _twelve_rows().assign(w=np.linspace(-1.0, 1.0, 12) ** 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lme2sm.lmer("y ~ z + w + (1 | g)", data)
        for table in (m.anova(), m.anova(ddf="Kenward-Roger")):
            assert list(table.index) == ["z", "w"]
            assert table.loc["z"].isna().all()
            assert table.loc["w", "NumDF"] == 1 and np.isfinite(table.loc["w", "F value"])


@pytest.mark.parametrize("re_form", ["default", None])
def test_predict_with_text_where_the_model_had_a_number_names_the_column(re_form):
    data = _data(24)
    fit = _quiet(lambda: lme2sm.lmer("y ~ log(x + 10) + (1 | g)", data))
    new = data.head(4).copy()
    new["x"] = new["x"].astype(str)
    before = new.copy()
    kwargs = {} if re_form == "default" else {"re_form": None}
    with pytest.raises(DataError, match=r"newdata's column 'x' holds .* as a number") as info:
        fit.predict(new, **kwargs)
    assert "pd.to_numeric(newdata['x'])" in str(info.value)
    assert "patsy" not in str(info.value) and "numeric factor" not in str(info.value)
    # numbers still predict, and the caller's frame is untouched
    expect = fit.predict(data.head(4))
    assert np.all(np.isfinite(expect))
    pd.testing.assert_frame_equal(new, before)


def test_multiindex_columns_are_one_data_error_saying_so():
    data = _data(24)
    data.columns = pd.MultiIndex.from_product([["m"], data.columns])
    with pytest.raises(DataError, match="MultiIndex .*column labels.*flatten") as info:
        lme2sm.lmer("y ~ x + (1 | g)", data)
    assert "formula: y ~ x + (1 | g)" in str(info.value)


@pytest.mark.parametrize("face", ["lmer", "translate", "glmer"])
def test_data_without_rows_says_so_not_that_rows_were_dropped(face):
    empty = _data(24).iloc[:0]
    call = {
        "lmer": lambda: lme2sm.lmer("y ~ x + (1 | g)", empty),
        "translate": lambda: lme2sm.translate("y ~ x + (1 | g)", empty),
        "glmer": lambda: lme2sm.glmer("b ~ x + (1 | g)", empty, family="binomial"),
    }[face]
    with pytest.raises(DataError, match="^the data have no rows: there is nothing to fit$"):
        call()
    missing = _data(24).assign(y=np.nan)
    with pytest.raises(DataError, match="no complete rows left"):
        _quiet(lambda: lme2sm.lmer("y ~ x + (1 | g)", missing))
