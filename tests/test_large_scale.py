"""The engine's stopping rule does not depend on n: ten million rows, from their sums.

The cross-products of ``y = mu + b_g + e`` (2,000 groups of 5,000 rows) are drawn from
their exact distribution (group sums and within-group sums of squares), so the test
needs no rows. For balanced one-way data the REML estimates have a closed form (the
ANOVA estimators), which the optimiser must reach.
"""

from __future__ import annotations

import numpy as np
import pytest

from lme2sm.engine.crossprod import CrossProducts
from lme2sm.engine.lmm import ProfiledLMM, TermSpec

G, M = 2_000, 5_000
MU, SD_B, SIGMA = 3.0, 0.7, 1.3


def one_way_crossprods(seed: int = 7) -> tuple[CrossProducts, float, float]:
    rng = np.random.default_rng(seed)
    b = rng.normal(0, SD_B, G)
    means = MU + b + rng.normal(0, SIGMA / np.sqrt(M), G)  # group means of y
    ssw = SIGMA**2 * rng.chisquare(M - 1, G)  # within-group sums of squares
    n = G * M
    sums = M * means
    yty = float(np.sum(ssw + M * means**2))
    cp = CrossProducts(
        q=(G,),
        k=(1,),
        diag=[np.full((G, 1, 1), float(M))],
        off={},
        zxy=[np.stack([np.full(G, float(M)), sums])[:, :, None]],
        xy=np.array([[float(n), sums.sum()], [sums.sum(), yty]]),
        n=n,
        sum_log_w=0.0,
        pattern={},
    )
    msw = ssw.sum() / (n - G)
    msb = M * np.sum((means - means.mean()) ** 2) / (G - 1)
    return cp, float(np.sqrt(msw)), float(np.sqrt((msb - msw) / M))


def test_ten_million_rows_reach_the_reml_optimum():
    cp, sigma, sd_b = one_way_crossprods()
    assert cp.n == 10_000_000
    fit = ProfiledLMM(cp, [TermSpec(G, 1)]).fit(reml=True)
    assert fit.converged
    assert fit.theta[0] != pytest.approx(1.0, abs=1e-3)  # moved away from the start
    assert fit.sigma == pytest.approx(sigma, rel=1e-6)
    assert fit.theta[0] * fit.sigma == pytest.approx(sd_b, rel=1e-5)
    # and the simulated values are recovered
    assert fit.sigma == pytest.approx(SIGMA, rel=1e-3)
    assert fit.theta[0] * fit.sigma == pytest.approx(SD_B, rel=0.05)
    assert fit.beta[0] == pytest.approx(MU, abs=0.05)
