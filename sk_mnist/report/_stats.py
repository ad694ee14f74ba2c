"""Confidence intervals for an accuracy and McNemar's test between two classifiers."""

from collections import namedtuple
from numbers import Integral, Real

import numpy as np
from scipy import stats
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

__all__ = ["McNemarResult", "mcnemar_test", "proportion_interval"]

#: Below this many discordant samples McNemar's test is exact (binomial): the
#: chi-square approximation is poor there (the usual rule of thumb).
EXACT_BELOW = 25


class McNemarResult(
    namedtuple("McNemarResult", ["only_a_correct", "only_b_correct", "statistic", "pvalue", "exact"])
):
    """Result of McNemar's test between two classifiers.

    A named tuple, as :func:`mcnemar_test` returns it: it unpacks as
    ``(only_a_correct, only_b_correct, statistic, pvalue, exact)``, and each
    field is also an attribute of the same name.

    Parameters
    ----------
    only_a_correct : int
        Number of test samples that classifier A got right and B wrong.
    only_b_correct : int
        Number of test samples that classifier B got right and A wrong.
    statistic : float
        The test statistic: ``min(only_a_correct, only_b_correct)`` for the
        exact test, the continuity-corrected chi-square statistic otherwise.
    pvalue : float
        The two-sided p-value.
    exact : bool
        Whether the test was the exact binomial test rather than the
        chi-square approximation.

    See Also
    --------
    mcnemar_test : Run the test and return this result.
    proportion_interval : Confidence interval of one classifier's accuracy.

    Examples
    --------
    >>> from sk_mnist.report import mcnemar_test
    >>> result = mcnemar_test([0, 1, 2, 3], [0, 1, 2, 0], [0, 1, 0, 3])
    >>> result
    McNemarResult(only_a_correct=1, only_b_correct=1, statistic=1.0, pvalue=1.0, exact=True)
    >>> only_a, only_b, statistic, pvalue, exact = result
    >>> pvalue == result.pvalue
    True
    """

    __slots__ = ()


@validate_params(
    {
        "successes": [Interval(Integral, 0, None, closed="left")],
        "trials": [Interval(Integral, 1, None, closed="left")],
        "confidence": [Interval(Real, 0, 1, closed="neither")],
        "method": [StrOptions({"wilson", "exact"})],
    },
    prefer_skip_nested_validation=True,
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
    scipy.stats.binomtest : Its ``proportion_ci`` computes these intervals.

    Examples
    --------
    >>> from sk_mnist.report import proportion_interval
    >>> low, high = proportion_interval(9837, 10000)
    >>> round(low, 4), round(high, 4)
    (0.981, 0.986)
    >>> proportion_interval(0, 10, method="exact")[0]
    0.0
    """
    if successes > trials:
        raise ValueError(f"Need successes <= trials; got {successes} of {trials}.")
    interval = stats.binomtest(successes, trials).proportion_ci(confidence, method=method)
    return float(interval.low), float(interval.high)


def mcnemar_test(y_true, y_pred_a, y_pred_b, *, exact="auto"):
    """Test whether two classifiers err equally often on the same test set (McNemar).

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
        pvalue = stats.binomtest(min(b, c), b + c, 0.5).pvalue
        return McNemarResult(b, c, float(min(b, c)), float(pvalue), True)
    correction = 1 if b != c else 0
    statistic = (abs(b - c) - correction) ** 2 / (b + c)
    return McNemarResult(b, c, float(statistic), float(stats.chi2.sf(statistic, df=1)), False)
