"""Bad argument values to result methods fail as ArgumentErrors that name the argument."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lme2sm
from lme2sm import arguments
from lme2sm.datasets import load
from lme2sm.errors import ArgumentError


@pytest.fixture(scope="module")
def sleep_fit():
    return lme2sm.lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))


@pytest.mark.parametrize("value", ["no", 2, None, 0.5])
def test_allow_new_levels_must_be_a_flag(sleep_fit, value):
    with pytest.raises(ArgumentError, match="allow_new_levels must be True or False"):
        sleep_fit.predict(load("sleepstudy").head(3), allow_new_levels=value)


@pytest.mark.parametrize("value", ["~x", 1, "Days"])
def test_re_form_other_than_none_or_zero_is_refused(sleep_fit, value):
    with pytest.raises(ArgumentError, match="re_form="):
        sleep_fit.predict(re_form=value)


@pytest.mark.parametrize("value", ["~0", "NA", " ~ 1 - 1", math.nan])
def test_population_level_spellings_agree(sleep_fit, value):
    expected = sleep_fit.predict(re_form="~0")
    np.testing.assert_array_equal(sleep_fit.predict(re_form=value), expected)


@pytest.mark.parametrize("value", [-1e-4, "small", math.inf, math.nan])
def test_singularity_tolerance_must_be_a_finite_nonnegative_number(sleep_fit, value):
    with pytest.raises(ArgumentError, match="tol must be a finite number >= 0"):
        sleep_fit.isSingular(tol=value)


def test_the_checks_return_the_value_they_accept():
    assert arguments.flag("f", np.True_) is True
    assert arguments.probability("level", 0.9) == 0.9
    assert arguments.count("nsim", np.int64(3)) == 3
    assert arguments.names("parm", "a", ["a", "b"]) == ["a"]
    with pytest.raises(ArgumentError, match="level must be a number between 0 and 1"):
        arguments.probability("level", 1.0)
    with pytest.raises(ArgumentError, match="nsim must be an integer >= 1"):
        arguments.count("nsim", True)
    with pytest.raises(ArgumentError, match="'c' not among the parameters"):
        arguments.names("parm", ["a", "c"], ["a", "b"])
    with pytest.raises(ArgumentError, match="seed must be None"):
        arguments.generator(-1)


# ------------------------------------------------------------ round 2 (issue #23)
# Every public method that takes a scalar or a choice: each bad value is an
# ArgumentError naming the argument and saying what it takes, before any work is done.

BAD_LEVEL = ["0.9", math.nan, math.inf, -0.1, 0, 1, 1.5, True, None, [0.9], 1j]
BAD_COUNT = [0, -1, 1.5, 2.0, "3", True, None, math.nan, np.float64(2.0), [3]]
BAD_SEED = [-1, 1.5, "1", True, math.nan, [1, -2], {}]
BAD_FLAG = ["no", 2, None, 0.5, math.nan, "False", [True]]
BAD_JOBS = [0, 1.5, "2", True, math.nan, [1]]
BAD_CHOICE = ["nope", 1, None, b"x", ["a"], True]
ALLOWED = {
    "level": "between 0 and 1",
    "nsim": "integer >=",
    "seed": "None, an integer >= 0 or a numpy Generator",
    "flag": "True or False",
    "n_jobs": "whole number",
    "choice": "one of",
}


@pytest.fixture(scope="module")
def intercept_fit():
    return lme2sm.lmer("Reaction ~ Days + (1 | Subject)", load("sleepstudy"))


@pytest.fixture(scope="module")
def oats_fit():
    return lme2sm.lmer("yield ~ nitro + Variety + (1 | Block)", load("Oats"))


@pytest.fixture(scope="module")
def cbpp_fit():
    return lme2sm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"))


def _fit(request, kind):
    return request.getfixturevalue({"lmer": "intercept_fit", "glmer": "cbpp_fit"}[kind])


def _refused(call, value, name, allowed):
    with pytest.raises(ArgumentError) as info:
        call(value)
    text = str(info.value)
    assert name in text, text
    assert allowed in text, text
    assert repr(value)[:20] in text or name == "parm", text


# (argument, kind of value, call(m, value)) for lmer and glmer fits alike
FIT_CASES = [
    ("level", "level", lambda m, v: m.confint(level=v, method="Wald")),
    ("level", "level", lambda m, v: m.confint(level=v, method="profile")),
    ("level", "level", lambda m, v: m.confint(level=v, method="boot", nsim=3)),
    ("method", "choice", lambda m, v: m.confint(method=v)),
    ("nsim", "nsim", lambda m, v: m.confint(method="boot", nsim=v, progress=False)),
    ("seed", "seed", lambda m, v: m.confint(method="boot", nsim=3, seed=v, progress=False)),
    ("progress", "flag", lambda m, v: m.confint(method="boot", nsim=3, progress=v)),
    ("n_jobs", "n_jobs", lambda m, v: m.confint(parm="beta_", n_jobs=v)),
    ("n_jobs", "n_jobs", lambda m, v: m.confint(method="boot", nsim=3, n_jobs=v)),
    ("nsim", "nsim", lambda m, v: m.bootstrap_samples(nsim=v, progress=False)),
    ("seed", "seed", lambda m, v: m.bootstrap_samples(nsim=2, seed=v, progress=False)),
    ("progress", "flag", lambda m, v: m.bootstrap_samples(nsim=2, progress=v)),
    ("n_jobs", "n_jobs", lambda m, v: m.bootstrap_samples(nsim=2, n_jobs=v, progress=False)),
    ("nsim", "nsim", lambda m, v: m.simulate(nsim=v)),
    ("seed", "seed", lambda m, v: m.simulate(seed=v)),
    ("se_fit", "flag", lambda m, v: m.predict(m.frame.data.head(2), se_fit=v)),
    (
        "level",
        "level",
        lambda m, v: m.predict(m.frame.data.head(2), interval="confidence", level=v),
    ),
    ("by_group", "flag", lambda m, v: m.icc(by_group=v)),
    ("conf_int", "flag", lambda m, v: m.tidy(conf_int=v)),
    ("level", "level", lambda m, v: m.tidy(conf_int=True, level=v)),
]
VALUES = {
    "level": BAD_LEVEL,
    "nsim": BAD_COUNT,
    "seed": BAD_SEED,
    "flag": BAD_FLAG,
    "n_jobs": BAD_JOBS,
    "choice": BAD_CHOICE,
}


@pytest.mark.parametrize("kind", ["lmer", "glmer"])
@pytest.mark.parametrize(
    ("name", "what", "call"), FIT_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(FIT_CASES)]
)
def test_bad_scalar_arguments_are_refused_by_name(request, kind, name, what, call):
    m = _fit(request, kind)
    for value in VALUES[what]:
        if name == "se_fit" and value is None:
            continue
        _refused(lambda v: call(m, v), value, name, ALLOWED[what])


@pytest.mark.parametrize("kind", ["lmer", "glmer"])
@pytest.mark.parametrize("method", ["Wald", "profile", "boot"])
@pytest.mark.parametrize("parm", ["nope", 1, [1], ["nope"], {}, [], ("Days", 2), ["theta"]])
def test_parm_names_rows_of_the_table(request, kind, method, parm):
    """Before: an unknown name gave an empty table, an int a raw TypeError, and the
    bootstrap checked parm only after every refit."""
    m = _fit(request, kind)
    with pytest.raises(ArgumentError, match="parm"):
        m.confint(method=method, parm=parm, nsim=100_000, progress=False)


@pytest.mark.parametrize("kind", ["lmer", "glmer"])
def test_wald_parm_of_a_variance_parameter_says_which_method_has_it(request, kind):
    m = _fit(request, kind)
    with pytest.raises(ArgumentError, match="need method='profile' or 'boot'"):
        m.confint(method="Wald", parm="sd_(Intercept)|" + m.frame.terms[0].group)


def test_parm_aliases_are_lme4s(intercept_fit):
    m = intercept_fit
    theta = m.confint(parm="theta_")
    assert list(theta.index) == ["sd_(Intercept)|Subject", "sigma"]
    pd_testing_equal(theta, m.confint(parm=["sd_(Intercept)|Subject", "sigma"]))
    beta = m.confint(method="Wald", parm="beta_")
    pd_testing_equal(beta, m.confint(method="Wald"))
    pd_testing_equal(m.confint(method="Wald", parm="Days"), m.confint(method="Wald").loc[["Days"]])


def pd_testing_equal(a, b):
    import pandas.testing as pdt

    pdt.assert_frame_equal(a, b, check_exact=True)


@pytest.mark.parametrize("kind", ["lmer", "glmer"])
def test_numpy_scalars_give_the_same_numbers(request, kind):
    m = _fit(request, kind)
    pd_testing_equal(
        m.confint(method="Wald", level=np.float64(0.9)), m.confint(method="Wald", level=0.9)
    )
    one = m.confint(method="boot", nsim=3, seed=5, progress=False)
    pd_testing_equal(
        one, m.confint(method="boot", nsim=np.int64(3), seed=np.int64(5), progress=np.False_)
    )
    pd_testing_equal(
        one, m.confint(method="boot", nsim=3, seed=np.random.default_rng(5), progress=0)
    )
    pd_testing_equal(
        one, m.confint(method="BOOT", nsim=3, seed=5, progress=False, n_jobs=np.int64(1))
    )
    pd_testing_equal(m.simulate(nsim=np.int64(2), seed=np.int64(1)), m.simulate(nsim=2, seed=1))
    nd = m.frame.data.head(3)
    pd_testing_equal(
        m.predict(nd, se_fit=np.True_, interval="confidence", level=np.float64(0.9)),
        m.predict(nd, se_fit=True, interval="confidence", level=0.9),
    )
    assert m.icc(by_group=np.False_).equals(m.icc())
    pd_testing_equal(m.tidy(conf_int=1, level=np.float64(0.95)), m.tidy(conf_int=True))


def test_float32_levels_are_numbers(intercept_fit):
    ci = intercept_fit.confint(method="Wald", level=np.float32(0.9))
    np.testing.assert_allclose(
        ci.to_numpy(), intercept_fit.confint(method="Wald", level=0.9), rtol=1e-6
    )


@pytest.mark.parametrize("value", ["~x", 1, "Days", True, "~1|Subject"])
def test_simulate_re_form_is_none_or_the_population(sleep_fit, value):
    with pytest.raises(ArgumentError, match="re_form="):
        sleep_fit.simulate(re_form=value)


@pytest.mark.parametrize("value", ["NA", "na", "nan", "~ -1", math.nan])
def test_simulate_new_effects_spellings_agree(sleep_fit, value):
    pd_testing_equal(sleep_fit.simulate(seed=3, re_form=value), sleep_fit.simulate(seed=3))


@pytest.mark.parametrize("value", ["conf", 1, True, "Confidence", ["confidence"]])
def test_predict_interval_is_a_choice(sleep_fit, value):
    with pytest.raises(ArgumentError, match="interval=.*'confidence' or 'prediction'"):
        sleep_fit.predict(load("sleepstudy").head(2), interval=value)


@pytest.mark.parametrize("value", BAD_CHOICE)
def test_glmer_predict_type_is_a_choice(cbpp_fit, value):
    nd = cbpp_fit.frame.data.head(2)
    with pytest.raises(ArgumentError, match="type"):
        cbpp_fit.predict(nd, se_fit=True, type=value)


def test_newdata_must_be_a_frame(sleep_fit, cbpp_fit):
    for m in (sleep_fit, cbpp_fit):
        with pytest.raises(lme2sm.DataError, match="newdata must be a pandas DataFrame"):
            m.predict({"Days": [1]})


@pytest.mark.parametrize("kind", ["lmer", "glmer"])
@pytest.mark.parametrize("value", ["no", 2, 0.5, math.nan])
def test_summary_correlation_is_a_flag_or_none(request, kind, value):
    with pytest.raises(ArgumentError, match="correlation must be True, False or None"):
        _fit(request, kind).summary(correlation=value)


# ----------------------------------------------------------------- emmeans


@pytest.mark.parametrize("value", BAD_LEVEL)
def test_emmeans_level(oats_fit, value):
    _refused(lambda v: oats_fit.emmeans("Variety", level=v), value, "level", "between 0 and 1")


@pytest.mark.parametrize(
    ("where", "kwargs"),
    [
        ("specs", {"specs": "nope"}),
        ("specs", {"specs": ["nope"]}),
        ("specs", {"specs": "~ nope"}),
        ("specs", {"specs": 1}),
        ("specs", {"specs": [1]}),
        ("specs", {"specs": ""}),
        ("by", {"specs": "Variety", "by": "nope"}),
        ("by", {"specs": "Variety", "by": ["nope"]}),
        ("by", {"specs": "Variety", "by": 1}),
        ("at", {"specs": "Variety", "at": "x"}),
        ("at", {"specs": "Variety", "at": [1]}),
        ("at", {"specs": "Variety", "at": {"nope": 1}}),
        ("at", {"specs": "Variety", "at": {"nitro": "x"}}),
        ("at", {"specs": "Variety", "at": {"nitro": []}}),
        ("at", {"specs": "Variety", "at": {"nitro": math.nan}}),
        ("at", {"specs": "Variety", "at": {"nitro": [math.inf]}}),
        ("at", {"specs": "Variety", "at": {"nitro": [[1], [2, 3]]}}),
        ("at", {"specs": "Variety", "at": {"nitro": True}}),
        ("at", {"specs": "Variety", "at": {"Variety": ["Nope"]}}),
        ("ddf", {"specs": "Variety", "ddf": "nope"}),
    ],
)
def test_emmeans_arguments_name_themselves(oats_fit, where, kwargs):
    with pytest.raises(ArgumentError, match=where):
        oats_fit.emmeans(**kwargs)


def test_emmeans_at_numpy_values_are_the_same_grid(oats_fit):
    a = oats_fit.emmeans("Variety", at={"nitro": np.array([0.2, 0.4])}).table
    b = oats_fit.emmeans("Variety", at={"nitro": [0.2, 0.4]}).table
    pd_testing_equal(a, b)


@pytest.mark.parametrize("value", ["nope", 1, b"tukey", ["tukey"], True])
def test_pairs_adjust_is_a_choice(oats_fit, value):
    with pytest.raises(ArgumentError, match="adjust must be one of"):
        oats_fit.emmeans("Variety").pairs(adjust=value)


@pytest.mark.parametrize("value", BAD_FLAG)
def test_pairs_reverse_is_a_flag(oats_fit, value):
    _refused(
        lambda v: oats_fit.emmeans("Variety").pairs(reverse=v), value, "reverse", "True or False"
    )


def test_pairs_adjust_spellings_agree(oats_fit):
    e = oats_fit.emmeans("Variety")
    pd_testing_equal(e.pairs(adjust="Tukey"), e.pairs())
    pd_testing_equal(e.pairs(adjust=None), e.pairs(adjust="none"))
    pd_testing_equal(e.pairs(reverse=np.False_), e.pairs())


# -------------------------------------------------- anova, drop1, tables, fits


@pytest.mark.parametrize("value", BAD_FLAG)
def test_anova_refit_is_a_flag(sleep_fit, intercept_fit, value):
    _refused(lambda v: lme2sm.anova(sleep_fit, intercept_fit, refit=v), value, "refit", "True or")


@pytest.mark.parametrize("other", ["x", 1, None, [1]])
def test_anova_takes_fits_only(sleep_fit, cbpp_fit, other):
    with pytest.raises(ArgumentError, match="m2 is"):
        lme2sm.anova(sleep_fit, other)
    with pytest.raises(ArgumentError, match="m1 is"):
        lme2sm.anova(other)
    with pytest.raises(ArgumentError, match="m2 is"):
        cbpp_fit.anova(other)


def test_glmer_anova_against_an_lmer_fit_is_refused(sleep_fit, cbpp_fit):
    with pytest.raises(ArgumentError, match="m2 is LmerResult"):
        cbpp_fit.anova(sleep_fit)


@pytest.mark.parametrize("value", [None, "lme4"])
def test_single_anova_ddf_names_itself(sleep_fit, value):
    with pytest.raises(ArgumentError, match="ddf must be 'Satterthwaite' or 'Kenward-Roger'"):
        sleep_fit.anova(ddf=value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scope": 1}, "scope must be"),
        ({"scope": {}}, "scope must be"),
        ({"scope": ["Days", 2]}, "scope is not a subset"),
        ({"test": None}, "test must be"),
        ({"test": "F", "ddf": "nope"}, "ddf must be"),
    ],
)
def test_drop1_arguments(sleep_fit, kwargs, match):
    with pytest.raises(ArgumentError, match=match):
        lme2sm.drop1(sleep_fit, **kwargs)


@pytest.mark.parametrize("value", ["x", 1, None, load("sleepstudy")])
def test_drop1_takes_a_fit(value):
    with pytest.raises(ArgumentError, match="drop1\\(\\) takes a fit"):
        lme2sm.drop1(value)


@pytest.mark.parametrize("value", ["CR3", 1, True, "cr2x", ["CR2"]])
def test_robust_vcov_names_the_argument_it_came_from(sleep_fit, value):
    with pytest.raises(ArgumentError, match="vcov must be one of CR0, CR1, CR2"):
        sleep_fit.coef_table(vcov=value)
    with pytest.raises(ArgumentError, match="vcov must be one of CR0, CR1, CR2"):
        sleep_fit.summary(vcov=value)
    with pytest.raises(ArgumentError, match="type must be one of CR0, CR1, CR2"):
        sleep_fit.vcovCR(type=value)


@pytest.mark.parametrize("value", ["x", 1, True, ["Satterthwaite"]])
def test_summary_ddf_is_an_argument_error(sleep_fit, value):
    """Before: a raw ValueError."""
    with pytest.raises(ArgumentError, match="ddf must be"):
        sleep_fit.summary(ddf=value)


def test_summary_ddf_spellings_agree(sleep_fit):
    assert sleep_fit.summary(ddf="kenward-roger") == sleep_fit.summary(ddf="Kenward-Roger")
    assert sleep_fit.summary(ddf="lme4") == sleep_fit.summary(ddf=None)


SLEEP = "Reaction ~ Days + (1 | Subject)"
CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


FIT_KEYWORDS = [
    ("REML", "True or False", ["yes", 2, None, 0.5, math.nan]),
    ("engine", "one of", ["nope", 1, None, "LME4"]),
    ("approximate", "True or False", ["yes", 2, None, math.nan]),
    ("nAGQ", "from 0 to 25", [-1, 1.5, "1", True, None, math.nan, 26, 100]),
    ("family", "family", ["nope", 1, None, True, "binomial(link='nope')", "gaussian"]),
    ("theta", "positive", [-1, 0, "1", True, math.nan, math.inf, [1]]),
]
FIT_CALLS = {
    "REML": lambda v: lme2sm.lmer(SLEEP, load("sleepstudy"), REML=v),
    "engine": lambda v: lme2sm.lmer(SLEEP, load("sleepstudy"), engine=v),
    "approximate": lambda v: lme2sm.lmer(
        SLEEP, load("sleepstudy"), engine="statsmodels", approximate=v
    ),
    "nAGQ": lambda v: lme2sm.glmer(CBPP, load("cbpp"), nAGQ=v),
    "family": lambda v: lme2sm.glmer(CBPP, load("cbpp"), family=v),
    "theta": lambda v: lme2sm.glmer_nb("TICKS ~ (1|BROOD)", load("grouseticks"), theta=v),
}


@pytest.mark.parametrize(
    ("name", "allowed", "value"),
    [(n, a, v) for n, a, values in FIT_KEYWORDS for v in values],
)
def test_fit_keywords_are_checked(name, allowed, value):
    with pytest.raises(ArgumentError) as info:
        FIT_CALLS[name](value)
    assert name in str(info.value) and allowed in str(info.value), str(info.value)


@pytest.mark.parametrize("value", [1, ["x"], b"x"])
def test_data_name_is_text(value):
    with pytest.raises(ArgumentError, match="data_name must be a string"):
        lme2sm.lmer(SLEEP, load("sleepstudy"), data_name=value)
    with pytest.raises(ArgumentError, match="data_name must be a string"):
        lme2sm.glmer(CBPP, load("cbpp"), data_name=value)


def test_fit_keywords_numpy_scalars_give_the_same_fit():
    a = lme2sm.lmer(SLEEP, load("sleepstudy"), REML=np.True_)
    b = lme2sm.lmer(SLEEP, load("sleepstudy"))
    assert a.logLik() == b.logLik()
    g1 = lme2sm.glmer(CBPP, load("cbpp"), nAGQ=np.int64(1))
    g2 = lme2sm.glmer(CBPP, load("cbpp"))
    assert g1.logLik() == g2.logLik()


def test_nagq_up_to_lme4s_limit():
    """lme4's mkGlmerDevfun: ``nAGQ <= 25L``; before, 100 nodes were fitted."""
    m = lme2sm.glmer(CBPP, load("cbpp"), nAGQ=np.int64(25))
    assert m.nAGQ == 25
    with pytest.raises(ArgumentError, match="nAGQ must be an integer from 0 to 25, not 26"):
        lme2sm.glmer(CBPP, load("cbpp"), nAGQ=26)


@pytest.mark.parametrize("value", [0, -1.5, "2", True, math.nan])
def test_n_jobs_checker(value):
    with pytest.raises(ArgumentError, match="n_jobs must be a whole number"):
        arguments.jobs(value)


def test_n_jobs_accepts_numpy_integers():
    from lme2sm.inference.parallel import resolve_n_jobs

    assert resolve_n_jobs(np.int64(2)) == 2
    assert resolve_n_jobs(None) == 1
    assert resolve_n_jobs(np.int32(-1)) >= 1


@pytest.mark.parametrize(
    ("groups", "match"), [("nope", "groups='nope' is not a column"), (1, "mixedlm")]
)
def test_mixedlm_passthrough_errors_are_lme2sm_errors(groups, match):
    with pytest.raises(ArgumentError, match=match):
        lme2sm.mixedlm("Reaction ~ Days", load("sleepstudy"), groups=groups)


def test_fit_takes_a_translation():
    with pytest.raises(ArgumentError, match="fit\\(\\) takes the translation"):
        lme2sm.fit("Reaction ~ Days + (1|Subject)")
