"""The classic published MNIST results, and this package's best, to print next to the measured ones."""

from collections import namedtuple

__all__ = ["CLASSIC_RESULTS", "published_result"]


class ClassicResult(namedtuple("ClassicResult", ["method", "test_error", "source"])):
    """A reference MNIST result: published, or this package's frontier recipe.

    A named tuple: it unpacks as ``(method, test_error, source)``, and each
    field is also an attribute of the same name. ``CLASSIC_RESULTS`` holds the
    results that reports print next to the measured ones.

    Parameters
    ----------
    method : str
        The model, as the literature (or docs/benchmarks.md) names it.
    test_error : float
        Its error rate on the 10,000 MNIST test images, in percent.
    source : str
        Where it was published, or where this package measured it.

    See Also
    --------
    published_result : The classic result that a baseline compares with.
    write_report : Print the classic results next to the measured ones.

    Examples
    --------
    >>> from sk_mnist.report import CLASSIC_RESULTS
    >>> result = CLASSIC_RESULTS[6]
    >>> result
    ClassicResult(method='LeNet-5', test_error=0.95, source='LeCun et al. 1998')
    >>> method, test_error, source = result
    >>> test_error == result.test_error
    True
    """

    __slots__ = ()


_LECUN = "LeCun et al. 1998"
_PAGE = "MNIST page"
_FRONTIER = "sk_mnist, docs/benchmarks.md (2 CPU cores)"

#: Test error rates (%) on the 10,000 MNIST test images, as published, then
#: this package's frontier recipe as docs/benchmarks.md measures it.
CLASSIC_RESULTS = (
    ClassicResult("linear classifier (1-layer NN)", 12.0, _LECUN),
    ClassicResult("linear classifier (1-layer NN), deskewed", 8.4, _LECUN),
    ClassicResult("k-NN, Euclidean (L2)", 5.0, _LECUN),
    ClassicResult("k-NN, Euclidean (L2), deskewed", 2.4, _LECUN),
    ClassicResult("SVM, Gaussian kernel", 1.4, _PAGE),
    ClassicResult("2-layer NN, 300 hidden units", 4.7, _LECUN),
    ClassicResult("LeNet-5", 0.95, _LECUN),
    ClassicResult("LeNet-5 with distortions", 0.8, _LECUN),
    ClassicResult("committee of 35 CNNs, elastic distortions", 0.23, "Cireşan et al. 2012"),
    # Modern anchors read without test-set selection: the mean over seeds of
    # the final epoch's model, or of whole ensembles, not the best run.
    ClassicResult("simple CNN, final epoch, mean of 30 seeds", 0.30, "An et al. 2020"),
    ClassicResult("ensemble of 15 CNNs, mean of 100 runs", 0.255, "Deotte, Kaggle 2018"),
    # The frontier recipe read the same way (benchmarks/bench_accuracy.py
    # --config frontier), so that every report shows where a full fit of this
    # package stands beside the anchors above.
    ClassicResult("deep CNN, frontier recipe, mean of 5 seeds", 0.296, _FRONTIER),
    ClassicResult("5 deep CNNs, frontier recipe, soft vote", 0.26, _FRONTIER),
)

# The published result each baseline is the modern counterpart of, by index
# into CLASSIC_RESULTS, without and with deskewing. Our CNN trains on random
# affine distortions, hence "LeNet-5 with distortions".
_COUNTERPARTS = {
    "logistic": (0, 1),
    "linear_svm": (0, 1),
    "knn": (2, 3),
    "rbf_svm": (4, None),
    "rbf_svm_pca": (4, None),
    "mlp": (5, None),
    "cnn": (7, None),
    "cnn_ensemble": (8, None),
}


def published_result(name):
    """The classic result that a model named after a baseline compares with.

    Parameters
    ----------
    name : str
        A baseline name (see :func:`sk_mnist.baselines.list_baselines`),
        optionally followed by ``"+deskew"``.

    Returns
    -------
    result : ClassicResult or None
        ``(method, test_error, source)``, the error in percent; None when the
        literature has no counterpart or ``name`` is not a baseline.

    Examples
    --------
    >>> from sk_mnist.report import published_result
    >>> published_result("knn+deskew")
    ClassicResult(method='k-NN, Euclidean (L2), deskewed', test_error=2.4, source='LeCun et al. 1998')
    >>> published_result("random_forest") is None
    True
    """
    base, deskewed = name.removesuffix("+deskew"), name.endswith("+deskew")
    index = _COUNTERPARTS.get(base, (None, None))[deskewed]
    return None if index is None else CLASSIC_RESULTS[index]
