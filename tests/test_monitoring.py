import logging
import math
import time

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.tree import DecisionTreeClassifier

from sk_mnist import MNISTCNNClassifier
from sk_mnist.monitoring import PerformanceMonitor, make_drifted

# -- a model whose every output is known --------------------------------------


@pytest.fixture(scope="module")
def toy():
    """A tree on one feature, a code: the code sets the class and its probability.

    code 0: class 0 with probability 1;  code 1: class 0 with 0.6;
    code 2: class 1 with probability 1;  code 3: class 1 with 0.6.
    """
    X = np.repeat([0, 1, 2, 3], 5).reshape(-1, 1)
    y = [0] * 5 + [0, 0, 0, 1, 1] + [1] * 5 + [0, 0, 1, 1, 1]
    tree = DecisionTreeClassifier(random_state=0).fit(X, y)
    np.testing.assert_allclose(
        tree.predict_proba(codes(0, 1, 2, 3)), [[1, 0], [0.6, 0.4], [0, 1], [0.4, 0.6]]
    )
    return tree


def codes(*values):
    return np.array(values, dtype=float).reshape(-1, 1)


def repeat(code, n):
    return codes(*[code] * n)


def test_rolling_accuracy_and_confidence_cover_the_last_window(toy):
    monitor = PerformanceMonitor(toy, 0.0, window=10)
    monitor.observe(repeat(0, 10), [0] * 10)
    assert monitor.report()["accuracy"] == 1.0
    monitor.observe(repeat(0, 4), [1] * 4)
    assert monitor.report()["accuracy"] == 0.6  # 6 right, 4 wrong in the last 10
    monitor.predict(repeat(1, 4))  # unlabelled: confidence window only
    report = monitor.report()
    assert report["accuracy"] == 0.6
    assert report["mean_confidence"] == pytest.approx((6 * 1.0 + 4 * 0.6) / 10)
    # A batch longer than the window leaves only its tail: 5 right, 5 wrong.
    monitor.observe(repeat(0, 25), [0] * 20 + [1] * 5)
    report = monitor.report()
    assert report["accuracy"] == 0.5 and report["mean_confidence"] == 1.0
    assert (report["n_samples"], report["n_labelled"]) == (43, 39)


def test_only_full_windows_are_judged_unless_min_samples(toy):
    monitor = PerformanceMonitor(toy, 0.9, window=10)
    monitor.observe(repeat(0, 9), [1] * 9)
    assert monitor.alerts == []
    monitor.observe(repeat(0, 1), [1])
    assert [(a.kind, a.n_samples) for a in monitor.alerts] == [("accuracy", 10)]

    monitor = PerformanceMonitor(toy, 0.9, window=10, min_samples=5)
    for _ in range(10):
        monitor.observe(repeat(0, 1), [1])
    assert [(a.kind, a.n_samples) for a in monitor.alerts] == [("accuracy", 5)]


def test_one_incident_raises_one_alert(toy):
    monitor = PerformanceMonitor(toy, 0.9, window=10)
    batches = [0] * 2 + [1] * 4 + [0] * 3 + [1]  # right or wrong, 5 samples each
    active = []
    for wrong in batches:
        monitor.observe(repeat(0, 5), [wrong] * 5)
        active.append(monitor.report()["active_alerts"])
    assert active == [[]] * 2 + [["accuracy"]] * 5 + [[]] * 2 + [["accuracy"]]
    # Held from sample 15 to 35, clear for a whole window, held again at 50.
    assert [alert.n_samples for alert in monitor.alerts] == [15, 50]
    assert monitor.alerts[0].value == 0.5 and monitor.alerts[0].threshold == pytest.approx(0.88)


def test_a_figure_hovering_at_the_threshold_raises_one_alert(toy):
    monitor = PerformanceMonitor(toy, 0.95, window=10)  # alert at 9 right in 10, clear at 10 in 10
    labels = [0] * 10 + ([1] + [0] * 10) * 5  # each wrong label leaves the window one sample before the next
    active = []
    for label in labels:
        monitor.observe(codes(0), [label])
        active.append(bool(monitor.report()["active_alerts"]))
    assert active.count(False) == 10 + 5  # the condition cleared five times...
    assert [alert.n_samples for alert in monitor.alerts] == [11]  # ...within one incident
    monitor.observe(repeat(0, 10), [0] * 10)
    monitor.observe(codes(0), [1])  # a window after the incident: a new one
    assert [alert.n_samples for alert in monitor.alerts] == [11, 76]


@pytest.mark.parametrize("n_wrong, alerts", [(6, 0), (7, 1)])
def test_a_drop_of_exactly_the_threshold_alerts(toy, n_wrong, alerts):
    # 0.95 - 0.93 is 0.0199999... in floating point: still a two-point drop.
    monitor = PerformanceMonitor(toy, 0.95, window=100)
    monitor.observe(repeat(0, 100), [1] * n_wrong + [0] * (100 - n_wrong))
    assert len(monitor.alerts) == alerts


def test_label_free_checks_compare_with_the_reference(toy):
    reference = codes(*[0] * 5 + [2] * 5)  # classes half and half, all with probability 1
    monitor = PerformanceMonitor(toy, 1.0, window=10).fit(reference)
    assert monitor.reference_confidence_ == 1.0
    np.testing.assert_array_equal(monitor.reference_distribution_, [0.5, 0.5])

    monitor.predict(reference)
    assert monitor.alerts == [] and monitor.report()["class_shift"] == 0.0

    monitor.predict(codes(*[1] * 5 + [3] * 5))  # same classes, less confident
    (alert,) = monitor.alerts
    assert (alert.kind, alert.value, alert.threshold) == ("confidence", pytest.approx(0.6), 0.95)
    assert monitor.report()["class_shift"] == 0.0

    monitor.reset().predict(repeat(0, 10))  # all class 0, fully confident
    (alert,) = monitor.alerts
    assert (alert.kind, alert.value, alert.threshold) == ("class_distribution", 0.5, 0.1)

    unfitted = PerformanceMonitor(toy, 1.0, window=10)  # no reference: nothing to compare with
    unfitted.predict(codes(*[1] * 5 + [3] * 5))
    unfitted.predict(repeat(0, 10))
    assert unfitted.alerts == [] and math.isnan(unfitted.report()["class_shift"])


def test_latency_slo(toy):
    monitor = PerformanceMonitor(toy, 0.0, latency_slo_ms=1e-6)
    for _ in range(25):
        monitor.predict(codes(0))
    # Judged from the 20th call on, and raised once for the lasting breach.
    (alert,) = monitor.alerts
    assert (alert.kind, alert.n_samples, alert.threshold) == ("latency", 20, 1e-6)
    assert alert.value > 1e-6 and monitor.report()["latency_p95_ms"] > 1e-6

    monitor = PerformanceMonitor(toy, 0.0, window=5, latency_slo_ms=1e-6)  # 20 calls never fit
    for _ in range(5):
        monitor.predict(codes(0))
    assert [(alert.kind, alert.n_samples) for alert in monitor.alerts] == [("latency", 5)]

    for slo in (1e6, None):
        monitor = PerformanceMonitor(toy, 0.0, latency_slo_ms=slo)
        for _ in range(25):
            monitor.predict(codes(0))
        assert monitor.alerts == []


def test_alerts_are_logged_and_passed_to_on_alert(toy, caplog):
    received = []
    monitor = PerformanceMonitor(toy, 1.0, window=10, on_alert=received.append)
    with caplog.at_level(logging.WARNING, logger="sk_mnist.monitoring"):
        monitor.observe(repeat(0, 10), [1] * 10)
    (alert,) = monitor.alerts
    assert received == [alert] and received[0] is alert
    (record,) = caplog.records
    assert (record.name, record.levelno, record.alert) == ("sk_mnist.monitoring", logging.WARNING, alert)
    assert record.getMessage() == f"accuracy alert: {alert.message}"
    assert "rolling accuracy 0.0000 over the last 10 labelled samples" in alert.message
    assert time.time() - 60 < alert.time <= time.time()


def test_report(toy):
    monitor = PerformanceMonitor(toy, 0.75, window=100)
    empty = monitor.report()
    assert set(empty) == {
        "n_samples",
        "n_labelled",
        "accuracy",
        "baseline_accuracy",
        "mean_confidence",
        "class_shift",
        "latency_p50_ms",
        "latency_p95_ms",
        "latency_p99_ms",
        "throughput_per_s",
        "n_alerts",
        "active_alerts",
    }
    assert (empty["n_samples"], empty["n_alerts"], empty["active_alerts"]) == (0, 0, [])
    assert all(math.isnan(empty[key]) for key in ("accuracy", "latency_p95_ms", "throughput_per_s"))

    start = time.perf_counter()
    for _ in range(30):
        monitor.observe(codes(0, 0, 0, 0, 0, 0, 1, 1, 2, 3), [0] * 5 + [1] * 5)
    elapsed = time.perf_counter() - start
    report = monitor.report()
    assert (report["n_samples"], report["n_labelled"], report["baseline_accuracy"]) == (300, 300, 0.75)
    assert report["accuracy"] == pytest.approx(0.7)  # wrong: code 0 labelled 1, and both codes 1
    assert report["mean_confidence"] == pytest.approx(0.88)
    assert 0 < report["latency_p50_ms"] <= report["latency_p95_ms"] <= report["latency_p99_ms"]
    # Model time is part of the wall time, so model throughput is at least the overall rate.
    assert report["throughput_per_s"] >= 300 / elapsed
    assert (report["n_alerts"], report["active_alerts"]) == (1, ["accuracy"])


def test_report_as_a_frame_is_one_row_of_the_same_indicators(toy):
    import pandas as pd

    monitor = PerformanceMonitor(toy, 0.75, window=10)
    monitor.observe(codes(0, 1, 2, 3), [0, 0, 1, 0])
    first = monitor.report()
    frame = monitor.report(as_frame=True)
    assert frame.shape == (1, len(first)) and list(frame.columns) == list(first)
    timed = [key for key in first if key.startswith(("latency", "throughput"))]  # they differ by call
    pd.testing.assert_frame_equal(frame.drop(columns=timed), pd.DataFrame([first]).drop(columns=timed))
    monitor.observe(codes(0, 0), [0, 0])
    # Reports taken over time concatenate into a timeline.
    timeline = pd.concat([frame, monitor.report(as_frame=True)], ignore_index=True)
    assert timeline["n_samples"].tolist() == [4, 6]
    assert timeline["accuracy"].tolist() == [0.75, pytest.approx(5 / 6)]


def test_repr_names_the_model_and_the_parameters_that_differ_from_their_defaults(toy):
    assert repr(PerformanceMonitor(toy, 0.75)) == (
        "PerformanceMonitor(DecisionTreeClassifier(random_state=0), baseline_accuracy=0.75)"
    )
    monitor = PerformanceMonitor(toy, 0.9, window=10, drop_threshold=0.05, latency_slo_ms=20.0)
    assert repr(monitor) == (
        "PerformanceMonitor(DecisionTreeClassifier(random_state=0), baseline_accuracy=0.9, "
        "drop_threshold=0.05, window=10, latency_slo_ms=20.0)"
    )


def test_reset_starts_a_new_stream_and_keeps_the_reference(toy):
    monitor = PerformanceMonitor(toy, 1.0, window=10).fit(repeat(2, 10))
    monitor.observe(repeat(0, 10), [1] * 10)
    assert len(monitor.alerts) == 2
    monitor.reset()
    assert monitor.alerts == [] and monitor.n_samples_ == monitor.n_labelled_ == 0
    assert math.isnan(monitor.report()["accuracy"]) and monitor.reference_confidence_ == 1.0


def test_observe_needs_one_label_per_sample(toy):
    monitor = PerformanceMonitor(toy, 1.0)
    for labels in ([0], [[0, 0], [0, 0]]):
        with pytest.raises(ValueError, match="inconsistent numbers of samples"):
            monitor.observe(codes(0, 0), labels)
    assert monitor.n_samples_ == 0
    monitor.observe(codes(0, 0), [[0], [1]])  # a column of labels is fine
    assert monitor.report()["n_labelled"] == 2


@pytest.mark.parametrize(
    "params, message",
    [
        ({"baseline_accuracy": 1.5}, "'baseline_accuracy' parameter"),
        ({"drop_threshold": 0}, "'drop_threshold' parameter"),
        ({"window": 0}, "'window' parameter"),
        ({"window": 2.5}, "'window' parameter"),
        ({"latency_slo_ms": -1}, "'latency_slo_ms' parameter"),
        ({"on_alert": "page me"}, "'on_alert' parameter"),
        ({"confidence_drop": 1.5}, "'confidence_drop' parameter"),
        ({"class_shift": 0}, "'class_shift' parameter"),
        ({"min_samples": 0}, "'min_samples' parameter"),
        ({"min_samples": 20, "window": 10}, "min_samples=20 cannot exceed window=10"),
        ({"estimator": object()}, "'estimator' parameter .* implementing 'predict_proba'"),
    ],
)
def test_invalid_parameters(toy, params, message):
    params = {"estimator": toy, "baseline_accuracy": 0.9, **params}
    with pytest.raises(ValueError, match=message):
        PerformanceMonitor(**params)


def test_the_estimator_must_be_fitted():
    with pytest.raises(NotFittedError):
        PerformanceMonitor(DecisionTreeClassifier(), 0.9)


# -- the CNN on clean and drifted digits ----------------------------------------


@pytest.fixture(scope="module")
def cnn(mnist_train, mnist_test):
    """A quickly trained CNN, a monitor fitted on reference digits, clean and drifted streams."""
    X, y = mnist_train
    clf = MNISTCNNClassifier(max_epochs=2, random_state=0).fit(X[:2000], y[:2000])
    X_test, y_test = mnist_test
    X_ref, y_ref = X_test[:2000], y_test[:2000]
    X_drift, y_drift = X_test[4000:5000], y_test[4000:5000]
    return {
        "clf": clf,
        # Shared by the tests, each of which starts a new stream with reset().
        "monitor": PerformanceMonitor(clf, clf.score(X_ref, y_ref)).fit(X_ref),
        "clean": (X_test[2000:4000], y_test[2000:4000]),
        "rotated": (make_drifted(X_drift, "rotated", random_state=0), y_drift),
        "noisy": (make_drifted(X_drift, "noisy", random_state=0), y_drift),
    }


def stream(monitor, X, y=None, batch_size=100):
    for start in range(0, len(X), batch_size):
        if y is None:
            monitor.predict(X[start : start + batch_size])
        else:
            monitor.observe(X[start : start + batch_size], y[start : start + batch_size])


def test_predictions_pass_through(cnn):
    (X, y), clf = cnn["clean"], cnn["clf"]
    monitor = PerformanceMonitor(clf, 0.9)
    np.testing.assert_array_equal(monitor.predict(X[:200]), clf.predict(X[:200]))
    np.testing.assert_array_equal(monitor.predict_proba(X[:200]), clf.predict_proba(X[:200]))
    np.testing.assert_array_equal(monitor.observe(X[:200], y[:200]), clf.predict(X[:200]))


def test_clean_digits_raise_no_alert(cnn):
    monitor = cnn["monitor"].reset()
    stream(monitor, *cnn["clean"])
    report = monitor.report()
    assert monitor.alerts == [] and report["n_labelled"] == 2000
    assert report["accuracy"] > monitor.baseline_accuracy - monitor.drop_threshold
    assert report["class_shift"] < monitor.class_shift
    assert report["mean_confidence"] > monitor.reference_confidence_ - monitor.confidence_drop


@pytest.mark.parametrize("drift", ["rotated", "noisy"])
@pytest.mark.parametrize("labelled", [True, False], ids=["labels", "no_labels"])
def test_drifted_digits_raise_an_alert(cnn, drift, labelled):
    monitor = cnn["monitor"].reset()
    X, y = cnn[drift]
    stream(monitor, X, y if labelled else None)
    kinds = [alert.kind for alert in monitor.alerts]
    # Label-free drift shows either way; accuracy only with labels, once.
    assert {"confidence", "class_distribution"} & set(kinds)
    assert kinds.count("accuracy") == (1 if labelled else 0)
    assert len(kinds) == len(set(kinds))


# -- drifted digits for trying a monitor ------------------------------------------


def test_make_drifted_is_seeded_and_leaves_its_input_alone(mnist_test):
    X = mnist_test[0][:20]
    before = X.copy()
    for kind in ("rotated", "noisy"):
        drifted = make_drifted(X, kind, random_state=0)
        assert drifted.shape == X.shape and drifted.dtype == np.uint8
        np.testing.assert_array_equal(drifted, make_drifted(X, kind, random_state=0))
        assert not np.array_equal(drifted, make_drifted(X, kind, random_state=1))
        assert (drifted != X).mean() > 0.1
    np.testing.assert_array_equal(X, before)
    # A rotation moves the ink but keeps most of it (the corners it brings in are empty).
    rotated = make_drifted(X, "rotated", random_state=0).astype(float)
    assert 0.8 < rotated.sum() / X.astype(float).sum() < 1.1


def test_make_drifted_refuses_what_it_cannot_drift():
    with pytest.raises(ValueError, match="square images; got 5 features"):
        make_drifted(np.zeros((2, 5)), "noisy")
    with pytest.raises(ValueError, match="kind"):
        make_drifted(np.zeros((2, 4)), "blurred")


# -- Prometheus -----------------------------------------------------------------


def scrape(monitor, **kwargs):
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from sk_mnist.monitoring import PrometheusCollector

    registry = CollectorRegistry()
    registry.register(PrometheusCollector(monitor, **kwargs))
    # Through the text format Prometheus reads, so that the exposition itself is checked.
    exposed = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposed)
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def test_prometheus_metrics_are_the_monitors_report_at_scrape_time(toy):
    pytest.importorskip("prometheus_client")
    monitor = PerformanceMonitor(toy, 0.9, window=10)
    monitor.observe(codes(0, 0, 1, 3), [0, 1, 0, 0])  # one right in four
    report = monitor.report()
    model = (("model", "tree"),)
    samples = scrape(monitor, namespace="digits", labels={"model": "tree"})
    assert samples[("digits_samples_total", model)] == 4
    assert samples[("digits_labelled_samples_total", model)] == 4
    assert samples[("digits_accuracy", model)] == 0.5
    assert samples[("digits_baseline_accuracy", model)] == 0.9
    assert samples[("digits_mean_confidence", model)] == pytest.approx(report["mean_confidence"])
    assert math.isnan(samples[("digits_class_shift", model)])  # no reference recorded
    for quantile in ("50", "95", "99"):
        key = ("digits_latency_seconds", (("model", "tree"), ("quantile", f"0.{quantile}")))
        assert samples[key] == pytest.approx(report[f"latency_p{quantile}_ms"] / 1000)
    assert samples[("digits_throughput_samples_per_second", model)] == pytest.approx(
        report["throughput_per_s"]
    )
    assert samples[("digits_alerts_total", model)] == 0
    assert len(samples) == 8 + 3 + 4  # one per indicator, three quantiles, four alert kinds
    # Read at each scrape: a later scrape sees the alert the next batch raises.
    monitor.observe(repeat(0, 6), [1] * 6)
    later = scrape(monitor)
    assert later[("sk_mnist_samples_total", ())] == 10 and later[("sk_mnist_alerts_total", ())] == 1
    assert {
        labels for (name, labels), value in later.items() if name == "sk_mnist_alert_active" and value == 1
    } == {(("kind", "accuracy"),)}
    assert len([key for key in later if key[0] == "sk_mnist_alert_active"]) == 4


def test_the_alert_kinds_exported_are_those_the_monitor_checks(toy):
    from sk_mnist.monitoring import ALERT_KINDS

    assert list(PerformanceMonitor(toy, 0.9)._breaches()) == list(ALERT_KINDS)


def test_the_prometheus_collector_takes_a_monitor_only(toy):
    from sk_mnist.monitoring import PrometheusCollector

    with pytest.raises(
        TypeError, match="^monitor must be a PerformanceMonitor; got DecisionTreeClassifier.$"
    ):
        PrometheusCollector(toy)


class _NoPrometheus:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "prometheus_client":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def test_without_prometheus_client_the_collector_names_the_extra(toy, monkeypatch):
    import sys

    from sk_mnist.monitoring import PrometheusCollector

    for name in [name for name in sys.modules if name.split(".")[0] == "prometheus_client"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_NoPrometheus(), *sys.meta_path])
    collector = PrometheusCollector(PerformanceMonitor(toy, 0.9))
    with pytest.raises(ImportError) as caught:
        next(collector.collect())
    assert str(caught.value) == (
        "prometheus_client is needed for the Prometheus metrics but is not installed; install it with: "
        'pip install "sk_mnist[monitoring]"'
    )
