"""Confidence intervals for an accuracy and McNemar's test between two classifiers."""

from collections import namedtuple

import numpy as np
from scipy import stats

__all__ = ["McNemarResult", "mcnemar_test", "proportion_interval"]

#: Below this many discordant samples McNemar's test is exact (binomial): the
#: chi-square approximation is poor there (the usual rule of thumb).
EXACT_BELOW = 25

McNemarResult = namedtuple(
    "McNemarResult", ["only_a_correct", "only_b_correct", "statistic", "pvalue", "exact"]
)


def proportion_interval(successes, trials, confidence=0.95, method="wilson"):
    """Confidence interval for a proportion, such as a test accuracy.

    Parameters
    ----------
    successes : int
        Number of successes (correctly classified samples).
    trials : int
        Number of trials (test samples); at least 1.
    confidence : float, default=0.95
        Coverage of the interval.
    method : {"wilson", "exact"}, default="wilson"
        The Wilson score interval, or the exact (Clopper-Pearson) interval
        from the binomial distribution, which is wider but never covers less
        than ``confidence``.

    Returns
    -------
    low, high : float
        The bounds, within [0, 1].

    See Also
    --------
    scipy.stats.binomtest : Its ``proportion_ci`` computes the same intervals.

    Examples
    --------
    >>> from sk_mnist.report import proportion_interval
    >>> low, high = proportion_interval(9837, 10000)
    >>> round(low, 4), round(high, 4)
    (0.981, 0.986)
    >>> proportion_interval(0, 10, method="exact")[0]
    0.0
    """
    if not 0 <= successes <= trials or trials < 1:
        raise ValueError(f"Need 0 <= successes <= trials and trials >= 1; got {successes} of {trials}.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}.")
    alpha = 1 - confidence
    if method == "wilson":
        z = stats.norm.ppf(1 - alpha / 2)
        centre = (successes + z**2 / 2) / (trials + z**2)
        half = z / (trials + z**2) * np.sqrt(successes * (trials - successes) / trials + z**2 / 4)
        return float(max(centre - half, 0.0)), float(min(centre + half, 1.0))
    if method == "exact":
        low = stats.beta.ppf(alpha / 2, successes, trials - successes + 1) if successes > 0 else 0.0
        high = stats.beta.ppf(1 - alpha / 2, successes + 1, trials - successes) if successes < trials else 1.0
        return float(low), float(high)
    raise ValueError(f"method must be 'wilson' or 'exact'; got {method!r}.")


def mcnemar_test(y_true, y_pred_a, y_pred_b, *, exact="auto"):
    """McNemar's test: do two classifiers err on the same test set equally often?

    Only the samples on which exactly one of the classifiers is right carry
    information: ``b`` where only A is right, ``c`` where only B is. Under the
    null hypothesis each of these ``b + c`` samples is equally likely to go
    either way.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred_a, y_pred_b : array-like of shape (n_samples,)
        The two classifiers' predictions.
    exact : bool or "auto", default="auto"
        True: the exact two-sided binomial test of ``b`` against
        ``Binomial(b + c, 1/2)``, whose statistic is ``min(b, c)``. False: the
        chi-square test with continuity correction,
        ``(|b - c| - 1)**2 / (b + c)`` on one degree of freedom (no
        correction when ``b == c``). "auto": exact when ``b + c < 25``.

    Returns
    -------
    result : McNemarResult
        Named tuple ``(only_a_correct, only_b_correct, statistic, pvalue,
        exact)``; the p-value is 1 when the classifiers never disagree in
        correctness.

    See Also
    --------
    proportion_interval : Confidence interval of one classifier's accuracy.

    References
    ----------
    Q. McNemar, "Note on the sampling error of the difference between
    correlated proportions or percentages", Psychometrika 12(2), 1947.
    T. G. Dietterich, "Approximate statistical tests for comparing supervised
    classification learning algorithms", Neural Computation 10(7), 1998.

    Examples
    --------
    >>> from sk_mnist.report import mcnemar_test
    >>> y = [0, 1, 2, 3, 4, 5, 6, 7]
    >>> result = mcnemar_test(y, [0, 1, 2, 3, 4, 5, 6, 0], [0, 0, 0, 0, 0, 5, 6, 7])
    >>> result.only_a_correct, result.only_b_correct, result.exact
    (4, 1, True)
    >>> round(result.pvalue, 4)  # 2 * P(Binomial(5, 1/2) <= 1)
    0.375
    """
    y_true, y_pred_a, y_pred_b = (np.asarray(values) for values in (y_true, y_pred_a, y_pred_b))
    if not y_true.shape == y_pred_a.shape == y_pred_b.shape or y_true.ndim != 1:
        raise ValueError(
            f"y_true, y_pred_a and y_pred_b must be 1-D and of one length; got shapes "
            f"{y_true.shape}, {y_pred_a.shape}, {y_pred_b.shape}."
        )
    correct_a, correct_b = y_pred_a == y_true, y_pred_b == y_true
    b = int(np.count_nonzero(correct_a & ~correct_b))
    c = int(np.count_nonzero(~correct_a & correct_b))
    if exact == "auto":
        exact = b + c < EXACT_BELOW
    if b + c == 0:
        return McNemarResult(b, c, 0.0, 1.0, bool(exact))
    if exact:
        pvalue = min(1.0, 2 * stats.binom.cdf(min(b, c), b + c, 0.5))
        return McNemarResult(b, c, float(min(b, c)), float(pvalue), True)
    correction = 1 if b != c else 0
    statistic = (abs(b - c) - correction) ** 2 / (b + c)
    return McNemarResult(b, c, float(statistic), float(stats.chi2.sf(statistic, df=1)), False)
