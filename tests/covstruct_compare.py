"""lme2sm's fit of a glmmTMB covariance-structure fixture (lmer: tests/fixtures/covstruct,
tools/make_covstruct_fixtures.R; glmer: tests/fixtures/glmer_covstruct,
tools/make_glmer_covstruct_fixtures.R) side by side with glmmTMB's numbers."""

from __future__ import annotations

import numpy as np
from feature_fixtures import fitted, load, names

KIND = "covstruct"
SINGULAR = 1e-4
"""lme4's isSingular tolerance on the relative SD."""
NAMES = names(KIND)


def reference(kind: str, name: str) -> dict:
    """glmmTMB's numbers: the fixture's fit, or its tight refit's (glmer fixtures'
    ``tight``: from the default optimum at nlminb's rel.tol 1e-14) where that is higher."""
    fx = load(kind, name)
    tight = fx.get("tight")
    if tight and tight["logLik"] > fx["logLik"]:
        return {**fx, **{k: tight[k] for k in ("logLik", "fixef", "se", "terms")}}
    return fx


def matched_terms(name: str, kind: str = KIND):
    """(glmmTMB's term, lme2sm's SDs, correlation matrix, structure) per term, glmmTMB's
    order; lme2sm's terms (lme4's order) matched by grouping factor, structure, columns."""
    fx, m = reference(kind, name), fitted(kind, name)
    ours = [(tc.group, tc.structure, list(tc.names), tc) for tc in m.term_covariances]
    out = []
    for ref in fx["terms"]:
        key = (ref["group"].split(".")[0], ref["structure"], list(ref["columns"]))
        j = next(i for i, o in enumerate(ours) if (o[0], o[1], o[2]) == key)
        tc = ours.pop(j)[3]
        sd = np.sqrt(np.clip(np.diag(tc.cov), 0, None))
        denom = np.outer(sd, sd)
        corr = np.divide(tc.cov, denom, out=np.full_like(tc.cov, np.nan), where=denom > 0)
        np.fill_diagonal(corr, 1.0)
        out.append((ref, sd, corr, tc.rho))
    return out


def differences(name: str, kind: str = KIND, flat_below: float | None = None) -> dict:
    """The largest differences against glmmTMB: logLik (lme2sm's minus glmmTMB's), fixef
    relative to max(|beta|, SE), SDs relative, correlations and rho absolute, sigma
    relative (lmer), SEs relative. SDs lme2sm puts at 0 (a singular fit: relative SD below lme4's isSingular
    tolerance; glmmTMB's log-SD cannot reach 0 and stops at a small positive value) are
    left out with their correlations and counted in ``zero_sds``. With ``flat_below``,
    SDs that both fits put below ``flat_below`` sigma (a flat profile near zero) are
    counted there too; an SD below it in one fit only is still compared."""
    fx, m = reference(kind, name), fitted(kind, name)
    fe, se = m.fixef(), m.se()
    fixef = max(abs(fe[k] - v) / max(abs(v), fx["se"][k] or 0.0) for k, v in fx["fixef"].items())
    sd_d, corr_d, rho_d, zero = 0.0, 0.0, 0.0, 0
    for ref, sd, corr, rho in matched_terms(name, kind):
        ref_sd = np.asarray(ref["sd"], dtype=float)
        live = sd > SINGULAR * m.sigma
        if flat_below is not None:
            live &= ~((sd < flat_below * m.sigma) & (ref_sd < flat_below * m.sigma))
        zero += int(np.sum(~live))
        if live.any():
            sd_d = max(sd_d, float(np.max(np.abs(sd[live] - ref_sd[live]) / ref_sd[live])))
        if ref["corr"] is not None:
            both = np.outer(live, live)
            gap = np.abs(corr - np.asarray(ref["corr"], dtype=float))[both]
            corr_d = max(corr_d, float(np.max(gap)) if gap.size else 0.0)
        if ref["rho"] is not None:
            rho_d = max(rho_d, abs(rho - ref["rho"]))
    return {
        "logLik": m.logLik() - fx["logLik"],
        "fixef": fixef,
        "se": max((abs(se[k] - v) / v for k, v in fx["se"].items() if v), default=0.0),
        "sd": sd_d,
        "corr": corr_d,
        "rho": rho_d,
        "sigma": abs(m.sigma - fx["sigma"]) / fx["sigma"] if "sigma" in fx else 0.0,
        "zero_sds": zero,
    }
