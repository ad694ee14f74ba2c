"""Named, ready-to-fit models to compare the CNN with.

Each baseline is a scikit-learn :class:`~sklearn.pipeline.Pipeline` that takes
raw MNIST pixel rows (uint8, 0-255) and whose last step, named ``"model"``, is
the classifier. The hyper-parameters are tuned for MNIST; the accuracy and
time each reaches on the full protocol (60,000 training images, 10,000 test
images, 2 CPU cores) are in docs/benchmarks.md. :data:`RUNS` sizes each
baseline for the runs of ``sk-mnist compare``.
"""

from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC, LinearSVC

from ._classifier import MNISTCNNClassifier
from .ensemble import make_cnn_ensemble
from .preprocessing import Deskewer, PixelScaler

__all__ = ["CNN_BASELINES", "DEFAULT_MODELS", "RUNS", "RUN_NOTES", "list_baselines", "make_baseline"]


def _scaled(model):
    # Pixels in [0, 1]: the scale on which the hyper-parameters were tuned.
    return [("scale", PixelScaler()), ("model", model)]


# Each builder takes the seed and the number of jobs and returns the
# pipeline's steps. Insertion order is the listing order: roughly from the
# cheapest model to fit to the dearest.
_BUILDERS = {
    "logistic": lambda seed, n_jobs: _scaled(LogisticRegression(C=0.1, max_iter=300, random_state=seed)),
    "linear_svm": lambda seed, n_jobs: _scaled(LinearSVC(C=0.1, random_state=seed)),
    "random_forest": lambda seed, n_jobs: [
        ("model", RandomForestClassifier(n_estimators=100, n_jobs=n_jobs, random_state=seed))
    ],
    "knn": lambda seed, n_jobs: _scaled(KNeighborsClassifier(n_neighbors=3, n_jobs=n_jobs)),
    "mlp": lambda seed, n_jobs: _scaled(
        MLPClassifier(hidden_layer_sizes=(300,), early_stopping=True, max_iter=100, random_state=seed)
    ),
    "rbf_svm_pca": lambda seed, n_jobs: [
        ("scale", PixelScaler()),
        ("pca", PCA(n_components=50, random_state=seed)),
        ("model", SVC(C=5.0, gamma=0.05, cache_size=1000, random_state=seed)),
    ],
    "rbf_svm": lambda seed, n_jobs: _scaled(SVC(C=5.0, gamma=0.05, cache_size=1000, random_state=seed)),
    "cnn": lambda seed, n_jobs: [("model", MNISTCNNClassifier(random_state=seed))],
    "cnn_ensemble": lambda seed, n_jobs: [("model", make_cnn_ensemble(5, random_state=seed, n_jobs=n_jobs))],
}


#: The models ``sk-mnist compare`` fits when ``--models`` is not given.
DEFAULT_MODELS = ("logistic", "linear_svm", "random_forest", "knn", "mlp", "rbf_svm_pca", "rbf_svm", "cnn")

#: Per kind of run, the training images and classifier parameters of each
#: baseline (a "+deskew" variant takes its base's). "default" is sized so that
#: the whole default comparison takes at most 5 minutes on a 2-core laptop;
#: "quick" so that it takes under a minute; "full" is the 60,000-image
#: protocol with every model's own defaults.
RUNS = {
    "quick": {
        "logistic": (3_000, {}),
        "linear_svm": (5_000, {}),
        "random_forest": (10_000, {}),
        "knn": (5_000, {}),
        "mlp": (3_000, {"max_iter": 15}),
        "rbf_svm_pca": (5_000, {}),
        "rbf_svm": (2_000, {}),
        "cnn": (5_000, {"max_epochs": 2}),
        "cnn_ensemble": (5_000, {"max_epochs": 2}),
    },
    "default": {
        "logistic": (60_000, {}),
        "linear_svm": (60_000, {}),
        "random_forest": (60_000, {}),
        "knn": (60_000, {}),
        "mlp": (30_000, {}),
        "rbf_svm_pca": (60_000, {}),
        "rbf_svm": (5_000, {}),
        "cnn": (60_000, {}),
        "cnn_ensemble": (20_000, {"max_epochs": 5}),
    },
    "full": {},
}

#: What each kind of run is, for the report's notes.
RUN_NOTES = {
    "quick": (
        "Quick run (--quick): small training subsets and few epochs, to check that everything works; the "
        "accuracies are far below what the models reach on the full training set."
    ),
    "default": (
        "Default run: the number of training images is chosen per model (column 'train images') so that the "
        "whole comparison finishes within 5 minutes on a 2-core laptop: the MLP gets half of the training set, "
        "and the exact RBF SVM a twelfth because its fit time grows with the square of the training set. "
        "'sk-mnist compare --full' trains every model on all 60,000 images."
    ),
    "full": "Full protocol (--full): every model trained on all 60,000 training images.",
}


#: The baselines that are CNNs.
CNN_BASELINES = ("cnn", "cnn_ensemble")


def list_baselines():
    """Return the names of the baselines that :func:`make_baseline` builds.

    Returns
    -------
    names : list of str
        Roughly from the cheapest model to fit to the dearest.

    See Also
    --------
    make_baseline : Build one of them.

    Examples
    --------
    >>> from sk_mnist.baselines import list_baselines
    >>> list_baselines()
    ['logistic', 'linear_svm', 'random_forest', 'knn', 'mlp', 'rbf_svm_pca', 'rbf_svm', 'cnn', 'cnn_ensemble']
    """
    return list(_BUILDERS)


def make_baseline(name, *, deskew=False, random_state=None, n_jobs=None, **params):
    """Build a named baseline model for MNIST.

    Every baseline is a :class:`~sklearn.pipeline.Pipeline` from raw pixel
    rows (0-255) to labels, whose last step, ``"model"``, is the classifier.

    =================  ==================================================
    name               pipeline and hyper-parameters
    =================  ==================================================
    ``logistic``       PixelScaler, LogisticRegression(C=0.1)
    ``linear_svm``     PixelScaler, LinearSVC(C=0.1)
    ``random_forest``  RandomForestClassifier(n_estimators=100)
    ``knn``            PixelScaler, KNeighborsClassifier(n_neighbors=3)
    ``mlp``            PixelScaler, MLPClassifier((300,), early stopping)
    ``rbf_svm_pca``    PixelScaler, PCA(50), SVC(C=5, gamma=0.05)
    ``rbf_svm``        PixelScaler, SVC(C=5, gamma=0.05)
    ``cnn``            MNISTCNNClassifier() with its default recipe
    ``cnn_ensemble``   make_cnn_ensemble(5): five such CNNs, soft vote
    =================  ==================================================

    ``rbf_svm_pca`` first projects the [0, 1] pixels on their 50 principal
    components, which keep the distances between digits that matter, so that
    the kernel SVM fits and predicts much faster than the exact ``rbf_svm``.
    Each model's accuracy and times on the full protocol are in
    docs/benchmarks.md.

    Parameters
    ----------
    name : str
        One of :func:`list_baselines`.
    deskew : bool, default=False
        Whether to put :class:`~sk_mnist.preprocessing.Deskewer` first, as
        LeCun et al. (1998) did for their deskewed results.
    random_state : int, RandomState instance or None, default=None
        Seed of every step that draws random numbers.
    n_jobs : int, default=None
        Parallel jobs of the models that take an ``n_jobs`` parameter (the
        random forest, k-NN, the CNN ensemble); ignored by the others.
    **params : dict
        Parameters of the classifier (``C=10``; for ``"cnn_ensemble"``, of
        every member: ``max_epochs=5``), or of any step by its pipeline name
        (``pca__n_components=40``).

    Returns
    -------
    model : sklearn.pipeline.Pipeline
        Unfitted.

    Raises
    ------
    ValueError
        If ``name`` is not a baseline.

    See Also
    --------
    list_baselines : The names.
    sk_mnist.report.compare : Fit and score several models side by side.

    Examples
    --------
    >>> from sk_mnist import load_mnist
    >>> from sk_mnist.baselines import make_baseline
    >>> X, y = load_mnist(return_X_y=True)
    >>> model = make_baseline("knn", n_neighbors=1)
    >>> [step for step, _ in model.steps]
    ['scale', 'model']
    >>> model.fit(X[:2000], y[:2000]).score(X[-500:], y[-500:])
    0.948
    >>> make_baseline("logistic", deskew=True).steps[0]
    ('deskew', Deskewer())
    """
    if name not in _BUILDERS:
        raise ValueError(f"Unknown baseline {name!r}; choose from {', '.join(_BUILDERS)}.")
    steps = _BUILDERS[name](random_state, n_jobs)
    if deskew:
        steps.insert(0, ("deskew", Deskewer()))
    model = Pipeline(steps)
    # An ensemble's own parameters are few; unprefixed ones are its members'.
    targets = (
        [f"model__{member}" for member, _ in model[-1].estimators] if name == "cnn_ensemble" else ["model"]
    )
    routed = {}
    for key, value in params.items():
        routed.update({key: value} if "__" in key else {f"{target}__{key}": value for target in targets})
    return model.set_params(**routed)
