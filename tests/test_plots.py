"""lme2sm.faces.plots: drawn with matplotlib's Agg backend, saved as PNG, contents checked."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import lme2sm
from lme2sm.datasets import load

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from lme2sm import plots  # noqa: E402


@pytest.fixture(scope="module")
def sleep():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lme2sm.lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))


@pytest.fixture(scope="module")
def penicillin():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lme2sm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", load("Penicillin"))


def _save(fig, tmp_path, name):
    path = tmp_path / f"{name}.png"
    fig.savefig(path)
    assert path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_caterpillar(sleep, tmp_path):
    import matplotlib.pyplot as plt

    fig = plots.caterpillar(sleep)
    _save(fig, tmp_path, "caterpillar")
    axes = fig.axes
    assert len(axes) == 2  # (Intercept) and Days
    re = sleep.ranef()["Subject"]
    for ax, col in zip(axes, re.columns):
        assert ax.get_xlabel() == col
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert sorted(labels) == sorted(str(v) for v in re.index)
        assert len(ax.containers) == 1  # one errorbar container
        bars = ax.containers[0]
        xs = np.sort(bars.lines[0].get_xdata())
        np.testing.assert_allclose(xs, np.sort(re[col].to_numpy()))
        segments = bars.lines[2][0].get_segments()
        assert len(segments) == len(re)
        widths = np.array([abs(s[1][0] - s[0][0]) for s in segments])
        assert np.all(widths > 0)
    # levels sorted by the intercept's conditional mode
    labels = [t.get_text() for t in axes[0].get_yticklabels()]
    assert labels == [str(v) for v in re["(Intercept)"].sort_values().index]
    plt.close(fig)


def test_caterpillar_interval_is_lme4_condvar(sleep):
    sd = plots.conditional_sd(sleep)["Subject"]
    # lme4: sqrt(attr(ranef(m, condVar = TRUE)$Subject, "postVar")) for subject 308
    assert sd.iloc[0]["(Intercept)"] == pytest.approx(12.07086, rel=2e-3)
    assert sd.iloc[0]["Days"] == pytest.approx(2.304839, rel=2e-3)


def test_caterpillar_other_group_and_given_axes(penicillin, tmp_path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    out = plots.caterpillar(penicillin, group="sample", ax=ax)
    assert out is fig
    labels = sorted(t.get_text() for t in ax.get_yticklabels())
    assert labels == list("ABCDEF")
    _save(fig, tmp_path, "caterpillar_sample")
    plt.close(fig)
    with pytest.raises(ValueError, match="no random effects"):
        plots.caterpillar(penicillin, group="nope")


def test_residuals_vs_fitted(sleep, tmp_path):
    import matplotlib.pyplot as plt

    fig = plots.residuals_vs_fitted(sleep)
    _save(fig, tmp_path, "resid")
    (ax,) = fig.axes
    assert ax.get_xlabel() == "Fitted values"
    assert ax.get_ylabel() == "Residuals"
    (points,) = ax.collections
    xy = points.get_offsets()
    assert xy.shape == (sleep.nobs, 2)
    np.testing.assert_allclose(xy[:, 0], sleep.fitted().to_numpy())
    np.testing.assert_allclose(xy[:, 1], sleep.residuals().to_numpy())
    assert len(ax.lines) == 1  # the zero line
    plt.close(fig)


def test_qq_ranef(penicillin, tmp_path):
    import matplotlib.pyplot as plt

    fig = plots.qq_ranef(penicillin, group="plate")
    _save(fig, tmp_path, "qq")
    (ax,) = fig.axes
    (points,) = ax.collections
    xy = points.get_offsets()
    assert xy.shape == (24, 2)
    assert np.all(np.diff(xy[:, 0]) > 0) and np.all(np.diff(xy[:, 1]) >= 0)
    np.testing.assert_allclose(xy[:, 1], np.sort(penicillin.ranef()["plate"]["(Intercept)"]))
    assert ax.get_xlabel() == "Standard normal quantiles"
    assert len(ax.lines) == 1  # the reference line
    plt.close(fig)
