"""The named baseline pipelines."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.ensemble import VotingClassifier
from sklearn.pipeline import Pipeline

from sk_mnist import MNISTCNNClassifier
from sk_mnist.baselines import list_baselines, make_baseline
from sk_mnist.preprocessing import Deskewer, PixelScaler

CLASSICAL = ["logistic", "linear_svm", "random_forest", "knn", "mlp", "rbf_svm_pca", "rbf_svm"]


def test_list_baselines():
    assert list_baselines() == [*CLASSICAL, "cnn", "cnn_ensemble"]


@pytest.mark.parametrize("name", list_baselines())
def test_every_baseline_is_a_pipeline_ending_in_model(name):
    model = make_baseline(name, random_state=3)
    assert isinstance(model, Pipeline)
    assert model.steps[-1][0] == "model"
    assert not hasattr(model[-1], "classes_")  # unfitted
    # Every step that draws random numbers got the seed (k-NN draws none;
    # the ensemble's members get seeds drawn from it).
    seeded = {key: value for key, value in model.get_params().items() if key.endswith("random_state")}
    assert bool(seeded) == (name != "knn")
    assert all(value == 3 for key, value in seeded.items() if "cnn_" not in key)


@pytest.mark.parametrize("name", list_baselines())
def test_deskew_puts_the_deskewer_first(name):
    plain, deskewed = make_baseline(name), make_baseline(name, deskew=True)
    assert isinstance(deskewed[0], Deskewer) and deskewed.steps[0][0] == "deskew"
    assert [step for step, _ in deskewed.steps[1:]] == [step for step, _ in plain.steps]


def test_documented_hyper_parameters():
    svm = make_baseline("rbf_svm")
    assert isinstance(svm[0], PixelScaler)
    assert (svm[-1].C, svm[-1].gamma) == (5.0, 0.05)
    fast = make_baseline("rbf_svm_pca")
    assert fast["pca"].n_components == 50 and (fast[-1].C, fast[-1].gamma) == (5.0, 0.05)
    assert make_baseline("knn")[-1].n_neighbors == 3
    assert make_baseline("mlp")[-1].hidden_layer_sizes == (300,)
    assert make_baseline("random_forest")[-1].n_estimators == 100
    assert isinstance(make_baseline("cnn")[-1], MNISTCNNClassifier)


def test_params_reach_the_classifier_or_a_named_step():
    model = make_baseline("rbf_svm_pca", C=10.0, pca__n_components=20)
    assert model[-1].C == 10.0 and model["pca"].n_components == 20
    assert make_baseline("cnn", max_epochs=3)[-1].max_epochs == 3
    ensemble = make_baseline("cnn_ensemble", max_epochs=3, model__voting="hard", model__cnn_0__dropout=0.2)
    assert [member.max_epochs for _, member in ensemble[-1].estimators] == [3] * 5
    assert ensemble[-1].voting == "hard" and ensemble[-1].estimators[0][1].dropout == 0.2
    with pytest.raises(ValueError, match="Invalid parameter"):
        make_baseline("knn", no_such_parameter=1)


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match="Unknown baseline 'svm'.*rbf_svm"):
        make_baseline("svm")


def test_n_jobs_goes_only_where_it_is_a_parameter():
    assert make_baseline("random_forest", n_jobs=2)[-1].n_jobs == 2
    assert make_baseline("knn", n_jobs=2)[-1].n_jobs == 2
    assert make_baseline("cnn_ensemble", n_jobs=2)[-1].n_jobs == 2
    # LogisticRegression's n_jobs is deprecated: setting it would warn at fit.
    assert make_baseline("logistic", n_jobs=2)[-1].n_jobs is None


def test_cnn_ensemble_members_differ_in_seed_only():
    ensemble = make_baseline("cnn_ensemble", random_state=0)[-1]
    assert isinstance(ensemble, VotingClassifier) and len(ensemble.estimators) == 5
    seeds = {member.random_state for _, member in ensemble.estimators}
    assert len(seeds) == 5
    assert make_baseline("cnn_ensemble", random_state=0).get_params()["model__cnn_0__random_state"] in seeds


@pytest.fixture(scope="module")
def small(mnist_train, mnist_test):
    (X, y), (X_test, y_test) = mnist_train, mnist_test
    return X[:1000], y[:1000], X_test[:500], y_test[:500]


@pytest.mark.parametrize("name", CLASSICAL)
def test_classical_baselines_learn_mnist_without_warnings(name, small):
    X, y, X_test, y_test = small
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = make_baseline(name, random_state=0).fit(X, y)
    # 1,000 training images: every method is far above chance (10%).
    assert model.score(X_test, y_test) > 0.8


def test_fits_are_reproducible_with_a_seed(small):
    X, y, X_test, _ = small
    first = make_baseline("random_forest", random_state=1).fit(X, y).predict_proba(X_test)
    second = clone(make_baseline("random_forest", random_state=1)).fit(X, y).predict_proba(X_test)
    np.testing.assert_array_equal(first, second)


def test_deskewing_helps_nearest_neighbours(small):
    # LeCun et al. (1998): deskewing cut the k-NN error from 5.0% to 2.4%.
    X, y, X_test, y_test = small
    plain = make_baseline("knn").fit(X, y).score(X_test, y_test)
    deskewed = make_baseline("knn", deskew=True).fit(X, y).score(X_test, y_test)
    assert deskewed > plain
