"""MNISTCNNClassifier inside scikit-learn's model-selection and ensemble tools."""

import os
import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_digits
from sklearn.ensemble import BaggingClassifier, StackingClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, StratifiedKFold, cross_validate
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.utils import estimator_html_repr

from sk_mnist import MNISTCNNClassifier, make_cnn_ensemble
from sk_mnist.preprocessing import GlobalStandardizer, PixelScaler

# 8x8 digits: real images, small enough for many fits per test.
FAST = dict(max_epochs=6, random_state=0)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600], y[:600], X[-300:], y[-300:]


@pytest.fixture(scope="module")
def fitted(digits):
    X, y, _, _ = digits
    return MNISTCNNClassifier(**FAST).fit(X, y)


def test_clone_of_fitted_is_unfitted_with_equal_params(fitted):
    unfitted = clone(fitted)
    assert unfitted.get_params() == fitted.get_params()
    assert not hasattr(unfitted, "module_") and not hasattr(unfitted, "classes_")


def test_get_set_params_with_routed_parameters(digits):
    X, y, _, _ = digits
    clf = MNISTCNNClassifier(module__hidden_units=32, **FAST)
    assert clf.get_params()["module__hidden_units"] == 32
    clf.set_params(module__hidden_units=48, optimizer__betas=(0.85, 0.99), dropout=0.3)
    params = clf.get_params()
    assert params["module__hidden_units"] == 48 and params["optimizer__betas"] == (0.85, 0.99)
    assert clone(clf).get_params() == params
    clf.fit(X, y)
    assert clf.module_.network.classifier[1].out_features == 48
    assert clf.module_.network.classifier[3].p == 0.3
    assert clf.optimizer_.param_groups[0]["betas"] == (0.85, 0.99)
    # on a fitted net, a routed module parameter rebuilds the network
    clf.set_params(module__hidden_units=16)
    assert clf.module_.network.classifier[1].out_features == 16


def test_pipeline_exposes_nested_params(digits):
    X, y, X_test, y_test = digits
    pipe = Pipeline([("scale", PixelScaler(max_value=16.0)), ("cnn", MNISTCNNClassifier(**FAST))])
    pipe.set_params(cnn__module__hidden_units=64, cnn__lr=1e-2)
    pipe.fit(X, y)
    assert pipe.named_steps["cnn"].module_.network.classifier[1].out_features == 64
    assert pipe.score(X_test, y_test) > 0.8


def _threads(estimator, X, y):
    return torch.get_num_threads()


@pytest.mark.parametrize("search", ["grid", "randomized"])
def test_search_in_parallel_gives_each_worker_its_share_of_cores(digits, search):
    X, y, _, _ = digits
    grid = {"cnn__dropout": [0.2, 0.5], "cnn__weight_decay": [0.0, 1e-4]}
    pipe = Pipeline([("scale", GlobalStandardizer()), ("cnn", MNISTCNNClassifier(**FAST))])
    kwargs = dict(cv=2, n_jobs=2, scoring={"accuracy": "accuracy", "threads": _threads}, refit="accuracy")
    if search == "grid":
        searcher = GridSearchCV(pipe, grid, **kwargs)
    else:
        searcher = RandomizedSearchCV(pipe, grid, n_iter=3, random_state=0, **kwargs)
    searcher.fit(X, y)
    share = max(1, (os.cpu_count() or 1) // 2)
    assert set(searcher.cv_results_["mean_test_threads"]) == {share}
    assert searcher.best_score_ > 0.7
    # Serially, with the same number of threads per fit, the scores are the
    # same bit for bit. (Float sums in convolution gradients are split by
    # thread, so fits are reproducible for a given thread count.)
    threads = torch.get_num_threads()
    torch.set_num_threads(share)
    try:
        serial = clone(searcher).set_params(n_jobs=1).fit(X, y)
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(
        serial.cv_results_["mean_test_accuracy"], searcher.cv_results_["mean_test_accuracy"]
    )


def test_cross_validate_with_several_scorers(digits):
    X, y, _, _ = digits
    # Ten epochs: after six, the smoothed probabilities are still too flat for the log-loss bound.
    clf = MNISTCNNClassifier(**{**FAST, "max_epochs": 10})
    result = cross_validate(clf, X, y, cv=3, scoring=["accuracy", "neg_log_loss"])
    assert np.all(result["test_accuracy"] > 0.7)
    assert np.all(result["test_neg_log_loss"] < 0) and np.all(result["test_neg_log_loss"] > -1.5)


@pytest.mark.parametrize("voting", ["soft", "hard"])
def test_voting(digits, voting):
    X, y, X_test, y_test = digits
    vote = VotingClassifier(
        [("a", MNISTCNNClassifier(**FAST)), ("b", MNISTCNNClassifier(max_epochs=6, random_state=1))],
        voting=voting,
    ).fit(X, y)
    assert vote.score(X_test, y_test) > 0.8
    if voting == "soft":
        members = [est.predict_proba(X_test) for est in vote.estimators_]
        np.testing.assert_allclose(vote.predict_proba(X_test), np.mean(members, axis=0))


def test_make_cnn_ensemble(digits):
    X, y, X_test, y_test = digits
    ensemble = make_cnn_ensemble(3, random_state=0, max_epochs=6)
    seeds = [est.random_state for _, est in ensemble.estimators]
    assert len(set(seeds)) == 3
    assert {est.max_epochs for _, est in ensemble.estimators} == {6}
    ensemble.fit(X, y)
    assert ensemble.score(X_test, y_test) > 0.8
    again = make_cnn_ensemble(3, random_state=0, max_epochs=6)
    assert [est.random_state for _, est in again.estimators] == seeds
    # usable in a search like any other estimator: the search's scores are
    # those of the members fitted on each fold and voted by hand...
    small = make_cnn_ensemble(2, random_state=0, max_epochs=1)
    search = GridSearchCV(small, {"voting": ["soft", "hard"]}, cv=2).fit(X, y)
    scores = {"soft": [], "hard": []}
    for train, test in StratifiedKFold(2).split(X, y):
        members = [clone(est).fit(X[train], y[train]).predict_proba(X[test]) for _, est in small.estimators]
        soft = np.mean(members, axis=0).argmax(axis=1)
        votes = np.eye(10, dtype=int)[[proba.argmax(axis=1) for proba in members]].sum(axis=0)
        hard = votes.argmax(axis=1)  # a tie goes to the smaller label, as in VotingClassifier
        scores["soft"].append(np.mean(soft == y[test]))
        scores["hard"].append(np.mean(hard == y[test]))
    expected = [np.mean(scores["soft"]), np.mean(scores["hard"])]
    assert [p["voting"] for p in search.cv_results_["params"]] == ["soft", "hard"]
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], expected, rtol=0, atol=1e-12)
    # ...and the best of them is chosen, and refitted with its voting.
    best = ["soft", "hard"][int(np.argmax(expected))]
    assert search.best_params_ == {"voting": best} and search.best_estimator_.voting == best


def test_make_cnn_ensemble_members_take_their_member_params_in_turn(digits):
    X, y, _, _ = digits
    common = dict(architecture="deep", dropout=0.1, max_epochs=1)
    different = [{"module__kernel_sizes": (3, 3, 3)}, {"module__kernel_sizes": (7, 3, 3), "dropout": 0.3}]
    mixed = make_cnn_ensemble(3, member_params=different, random_state=0, **common)
    # The seeds are those of the same ensemble without member_params.
    plain = make_cnn_ensemble(3, random_state=0, **common)
    assert [est.random_state for _, est in mixed.estimators] == [
        est.random_state for _, est in plain.estimators
    ]
    params = [est.get_params() for _, est in mixed.estimators]
    assert [p["module__kernel_sizes"] for p in params] == [(3, 3, 3), (7, 3, 3), (3, 3, 3)]
    assert [p["dropout"] for p in params] == [0.1, 0.3, 0.1]  # a member's own value wins
    assert all(p["architecture"] == "deep" and p["max_epochs"] == 1 for p in params)
    # The fitted members (clones, as VotingClassifier fits) hold the networks asked for.
    mixed.fit(X[:200], y[:200])

    def first(kind, est):
        return next(layer for layer in est.module_.modules() if isinstance(layer, kind))

    assert [first(torch.nn.Conv2d, est).kernel_size for est in mixed.estimators_] == [(3, 3), (7, 7), (3, 3)]
    assert [first(torch.nn.Dropout, est).p for est in mixed.estimators_] == [0.1, 0.3, 0.1]


@pytest.mark.parametrize(
    ("member_params", "message"),
    [
        ([], "non-empty list of dicts"),
        ([{}, "dropout=0.1"], "non-empty list of dicts"),
        ([{}] * 4, "4 entries for 3 members: some would go unused"),
        ([{}, {"random_state": 1}], "cannot set random_state"),
        ({"dropout": 0.1}, "'member_params' parameter of make_cnn_ensemble must be"),
    ],
)
def test_make_cnn_ensemble_refuses_member_params_it_cannot_apply(member_params, message):
    with pytest.raises(ValueError, match=message):
        make_cnn_ensemble(3, member_params=member_params)


def test_stacking(digits):
    X, y, X_test, y_test = digits
    stack = StackingClassifier(
        [
            ("cnn", MNISTCNNClassifier(**FAST)),
            ("logistic", make_pipeline(PixelScaler(16.0), LogisticRegression())),
        ],
        final_estimator=LogisticRegression(),
        cv=2,
    ).fit(X, y)
    assert stack.score(X_test, y_test) > 0.8


def test_calibration(digits):
    X, y, X_test, y_test = digits
    calibrated = CalibratedClassifierCV(MNISTCNNClassifier(**FAST), cv=2).fit(X, y)
    proba = calibrated.predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert calibrated.score(X_test, y_test) > 0.8


def test_bagging(digits):
    X, y, X_test, y_test = digits
    bag = BaggingClassifier(MNISTCNNClassifier(**FAST), n_estimators=2, random_state=0).fit(X, y)
    assert bag.score(X_test, y_test) > 0.7


@pytest.mark.parametrize("dump, load", [(pickle.dumps, pickle.loads), (None, None)], ids=["pickle", "joblib"])
def test_persistence_round_trip(fitted, digits, tmp_path, dump, load):
    _, _, X_test, _ = digits
    if dump is None:
        joblib.dump(fitted, tmp_path / "model.joblib")
        restored = joblib.load(tmp_path / "model.joblib")
    else:
        restored = load(dump(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X_test), fitted.predict_proba(X_test))
    assert restored.get_params() == fitted.get_params()
    assert vars(restored)["device"] == "auto"


def test_html_repr(fitted):
    html = estimator_html_repr(make_pipeline(PixelScaler(), fitted))
    assert "MNISTCNNClassifier" in html and "PixelScaler" in html
    assert fitted._repr_html_() and repr(fitted) == "MNISTCNNClassifier(max_epochs=6, random_state=0)"


@pytest.mark.parametrize("transformer", [PixelScaler(), GlobalStandardizer()])
def test_set_output_pandas(transformer, digits):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(digits[0], columns=[f"p{i}" for i in range(64)])
    out = clone(transformer).set_output(transform="pandas").fit_transform(X)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(X.columns)


def test_pandas_feature_names_through_a_pipeline(digits):
    pd = pytest.importorskip("pandas")
    X, y, X_test, _ = digits
    columns = [f"p{i}" for i in range(64)]
    pipe = make_pipeline(PixelScaler(16.0), MNISTCNNClassifier(**FAST)).set_output(transform="pandas")
    pipe.fit(pd.DataFrame(X, columns=columns), y)
    assert list(pipe[-1].feature_names_in_) == columns
    with pytest.raises(ValueError, match="feature names"):
        pipe.predict(pd.DataFrame(X_test, columns=columns[::-1]))
