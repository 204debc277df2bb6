"""glmer: families, responses, errors, results' faces (summary, predict, anova, translation)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from glmer_fixtures import ROOT, fitted, load

import lme2sm
from lme2sm import ArgumentError, DataError, glmer
from lme2sm.faces.glmer_translate import translate_glmer
from lme2sm.glmm.family import get_family
from lme2sm.glmm.pirls import GlmmProblem

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


@pytest.fixture(scope="module")
def cbpp():
    return pd.read_csv(ROOT / "lme2sm/datasets/cbpp.csv", dtype={"herd": str, "period": str})


@pytest.fixture(scope="module")
def binary():
    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(30), 12)
    x = rng.normal(size=len(g))
    eta = -0.3 + 0.8 * x + rng.normal(scale=0.9, size=30)[g]
    y = (rng.random(len(g)) < 1 / (1 + np.exp(-eta))).astype(int)
    return pd.DataFrame({"y": y, "x": x, "g": [f"s{i:02d}" for i in g]})


# ------------------------------------------------------------------ families


@pytest.mark.parametrize(
    "family, name, link",
    [
        ("binomial", "binomial", "logit"),
        ("poisson", "poisson", "log"),
        ("binomial(link='probit')", "binomial", "probit"),
        ('binomial(link = "cloglog")', "binomial", "cloglog"),
        ("binomial(probit)", "binomial", "probit"),
    ],
)
def test_family_strings(family, name, link):
    fam = get_family(family)
    assert (fam.name, fam.link_name) == (name, link)


def test_statsmodels_family_instance(cbpp):
    import statsmodels.api as sm

    fam = sm.families.Binomial(sm.families.links.Probit())
    assert get_family(fam).link_name == "probit"
    m = glmer(CBPP, cbpp, fam)
    assert m.logLik() == pytest.approx(fitted("cbpp_probit").logLik(), abs=1e-6)


@pytest.mark.parametrize("family", ["gaussian", "binomial(link='log')", "poisson(probit)", 3])
def test_unsupported_family(family):
    with pytest.raises(ArgumentError):
        get_family(family)


# ------------------------------------------------------------------ responses and errors


def test_two_level_factor_response_first_level_is_failure(binary):
    data = binary.assign(ans=np.where(binary.y == 1, "yes", "no"))
    a = glmer("y ~ x + (1 | g)", binary)
    b = glmer("ans ~ x + (1 | g)", data)
    assert a.logLik() == pytest.approx(b.logLik(), abs=1e-8)
    assert np.allclose(a.fixef(), b.fixef())


def test_bad_responses(binary, cbpp):
    with pytest.raises(DataError, match="outside"):
        glmer("y ~ x + (1 | g)", binary.assign(y=binary.y * 2))
    with pytest.raises(DataError, match="other than 0 and 1"):
        glmer("y ~ x + (1 | g)", binary.assign(y=binary.y * 0.5))
    with pytest.raises(DataError, match="3 levels"):
        glmer("f ~ x + (1 | g)", binary.assign(f=np.array(["a", "b", "c"] * 120)))
    with pytest.raises(DataError, match="negative counts"):
        glmer("y ~ x + (1 | g)", binary.assign(y=binary.y - 1), "poisson")
    with pytest.raises(DataError, match="non-integer"):
        glmer("y ~ x + (1 | g)", binary.assign(y=binary.y + 0.5), "poisson")
    with pytest.raises(DataError, match="non-integer"):
        glmer("cbind(incidence + 0.5, size - incidence) ~ period + (1 | herd)", cbpp)
    with pytest.raises(DataError, match="negative"):
        glmer("cbind(incidence, incidence - size) ~ period + (1 | herd)", cbpp)
    with pytest.raises(DataError, match="non-integer #successes"):
        glmer("I(incidence/size) ~ period + (1 | herd)", cbpp, weights=np.full(len(cbpp), 2.5))


def test_nagq_errors(binary):
    data = binary.assign(h=np.tile(["a", "b", "c"], 120))
    with pytest.raises(ArgumentError, match="single, scalar random-effects term"):
        glmer("y ~ x + (1 | g) + (1 | h)", data, nAGQ=5)
    with pytest.raises(ArgumentError, match="single, scalar random-effects term"):
        glmer("y ~ x + (x | g)", data, nAGQ=5)
    with pytest.raises(ArgumentError, match="nAGQ"):
        glmer("y ~ x + (1 | g)", data, nAGQ=-1)


def test_cbind_is_refused_by_lmer(cbpp):
    with pytest.raises(lme2sm.FormulaError, match="glmer"):
        lme2sm.lmer(CBPP, cbpp)


# ------------------------------------------------------------------ engine and stages


class _FreshLoadProblem(GlmmProblem):
    """PIRLS whose every step loads the engine afresh from the cross-products (the
    reference for the refilled engine of :mod:`lme2sm.engine.reweight`)."""

    def solve(self, theta, w, z, joint):
        from lme2sm.engine.crossprod import cross_products
        from lme2sm.engine.lmm import ProfiledLMM

        X = self.X if joint else self.X[:, :0]
        cp = cross_products(self.rows, X, z, w)
        return ProfiledLMM(cp, self.specs).evaluate(theta, modes=True)


@pytest.mark.parametrize("name", ["verbagg_binomial", "grouseticks_nested"])
def test_refilled_pirls_matches_a_fresh_load_per_step(name):
    m = fitted(name)
    pr = m.problem
    ref = _FreshLoadProblem(pr.rows, pr.specs, pr.X, pr.y, pr.trials, pr.wts, pr.offset, pr.family)
    st = m.engine_fit.state
    a = pr.pirls(st.theta, st.beta, start=(st.beta, st.u))
    b = ref.pirls(st.theta, st.beta, start=(st.beta, st.u))
    assert pr.laplace(a) == pytest.approx(ref.laplace(b), abs=1e-8)
    assert np.allclose(a.u_flat, b.u_flat, atol=1e-8)


def test_nagq0_is_the_first_stage(cbpp):
    # lme4 1.1-31: glmer(..., nAGQ = 0) on cbpp
    m0 = glmer(CBPP, cbpp, nAGQ=0)
    assert m0.logLik() == pytest.approx(-92.0543465, abs=1e-4)
    want = [-1.36047573, -0.97617324, -1.11107278, -1.55967568]
    assert np.allclose(m0.fixef(), want, rtol=1e-4)
    assert m0.theta[0] == pytest.approx(0.64183856, abs=1e-3)
    assert np.allclose(m0.se(), [0.2275790, 0.3032862, 0.3235104, 0.4244519], rtol=2e-3)


def test_nagq_scale_of_loglik(cbpp):
    m = glmer(CBPP, cbpp, nAGQ=25)
    assert m.logLik() == pytest.approx(fitted("cbpp_binomial_agq9").logLik(), abs=1e-3)


# ------------------------------------------------------------------ results


def test_summary_reads_like_lme4():
    m = fitted("cbpp_binomial")
    text = m.summary()
    want = load("cbpp_binomial")["summary"]
    # same lines, same layout; numbers agree where lme4's default fit is not 3e-4 short
    for line in (
        "Generalized linear mixed model fit by maximum likelihood (Laplace",
        "  Approximation) [glmerMod]",
        " Family: binomial  ( logit )",
        "     AIC      BIC   logLik deviance df.resid ",
        "   194.1    204.2    -92.0    184.1       51 ",
        " Groups Name        Variance Std.Dev.",
        "Number of obs: 56, groups:  herd, 15",
        "            Estimate Std. Error z value Pr(>|z|)    ",
        "        (Intr) perid2 perid3",
    ):
        assert line in want.splitlines()
        assert line in text.splitlines()
    assert re.search(r"^\(Intercept\)  -1\.398\d     0\.232\d  -6\.0\d\d", text, re.M)
    agq = fitted("cbpp_binomial_agq9").summary()
    assert "(Adaptive\n  Gauss-Hermite Quadrature, nAGQ = 9) [glmerMod]" in agq


def test_ranef_coef_and_varcorr():
    m = fitted("verbagg_corr")
    re_ = m.ranef()
    assert set(re_) == {"id", "item"}
    assert list(re_["item"].columns) == ["(Intercept)", "GenderM"]
    coef = m.coef()["item"]
    assert np.allclose(coef["GenderM"], m.fixef()["GenderM"] + re_["item"]["GenderM"])
    vc = m.VarCorr()
    assert list(vc.columns) == ["grp", "var1", "var2", "vcov", "sdcor"]
    assert "Residual" not in set(vc.grp)


def test_predict_newdata_and_new_levels(cbpp):
    m = fitted("cbpp_binomial")
    head = cbpp.head(5)
    assert np.allclose(m.predict(head, type="response"), m.fitted().head(5))
    new = head.assign(herd="new herd")
    with pytest.raises(DataError, match="allow_new_levels"):
        m.predict(new)
    assert np.allclose(m.predict(new, allow_new_levels=True), m.predict(head, re_form="~0"))
    with pytest.raises(ArgumentError):
        m.predict(type="probability")


def test_offset_enters_predictions():
    m = fitted("poisson_offset")
    data = m.frame.data
    fixed = m.predict(data, re_form="~0")
    X = m.frame.X @ m.fixef().to_numpy()
    assert np.allclose(fixed, X + np.log(data["exposure"]))
    assert np.allclose(m.predict(data, type="response"), m.fitted())


def test_anova_lrt(cbpp):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small = glmer("cbind(incidence, size - incidence) ~ 1 + (1 | herd)", cbpp)
    big = fitted("cbpp_binomial")
    tab = big.anova(small)
    assert list(tab.npar) == [2, 5]
    assert tab["Chisq"].iloc[1] == pytest.approx(2 * (big.logLik() - small.logLik()))
    assert tab["Df"].iloc[1] == 3
    assert 0 < tab["Pr(>Chisq)"].iloc[1] < 1e-3


def test_confint_wald():
    m = fitted("cbpp_binomial")
    ci = m.confint(method="Wald")
    assert list(ci.columns) == ["2.5 %", "97.5 %"]
    assert np.allclose(ci["97.5 %"] - ci["2.5 %"], 2 * 1.959964 * m.se(), rtol=1e-6)


def test_translation_to_statsmodels():
    t = translate_glmer(CBPP)
    code = t.code()
    assert "BinomialBayesMixedGLM.from_formula" in code
    assert "'herd': '0 + C(herd)'" in code
    assert "variational Bayes" in t.explain()
    t2 = translate_glmer("y ~ x + (1 + x | g)", "poisson")
    assert "PoissonBayesMixedGLM" in t2.code()
    assert "correlated random effects cannot be expressed" in t2.explain()


def test_translation_code_runs(cbpp):
    data = cbpp.copy()
    namespace = {"data": data}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(translate_glmer(CBPP).code().replace("print(", "str("), namespace)
    assert namespace["result"].fe_mean.shape == (4,)


def test_cli_family_weights_nagq(capsys):
    import json

    from lme2sm.cli import main

    csv = str(ROOT / "lme2sm/datasets/cbpp.csv")
    formula = "incidence/size ~ factor(period) + (1 | herd)"
    assert main(["fit", csv, formula, "--family", "binomial", "--weights", "size"]) == 0
    out = capsys.readouterr().out
    assert " Family: binomial  ( logit )" in out
    assert "   194.1    204.2    -92.0    184.1       51 " in out
    assert main(["fit", csv, formula, "--family", "binomial", "--weights", "size",
                 "--nAGQ", "9", "--json"]) == 0  # fmt: skip
    res = json.loads(capsys.readouterr().out)
    assert res["nAGQ"] == 9 and abs(res["logLik"] - -50.00502) < 1e-4
    assert main(["fit", csv, formula, "--nAGQ", "9"]) == 2
