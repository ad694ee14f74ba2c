"""Production monitoring of a fitted classifier: accuracy, latency and drift.

:class:`PerformanceMonitor` stands in front of a fitted classifier, passes
predictions through, and raises an :class:`Alert` when the stream it serves
stops looking like the data the model was validated on.
"""

import logging
import math
import time
from dataclasses import dataclass
from inspect import signature
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    StrOptions,
    validate_parameter_constraints,
    validate_params,
)
from sklearn.utils.validation import check_array, check_consistent_length, check_is_fitted

from ._labels import check_label_kind
from ._optional import require

__all__ = ["Alert", "PerformanceMonitor", "PrometheusCollector", "make_drifted"]

#: The conditions that raise alerts, as :attr:`Alert.kind` names them.
ALERT_KINDS = ("accuracy", "latency", "confidence", "class_distribution")

_logger = logging.getLogger(__name__)

# Below 20 calls the 95th percentile of their latencies is just the slowest
# call, and one cold start would break the SLO. (A window of fewer calls is
# judged once full.)
_MIN_CALLS_FOR_P95 = 20


@dataclass(frozen=True)
class Alert:
    """One alert raised by a :class:`PerformanceMonitor`.

    An alert is an immutable record. The monitor appends each one to its
    ``alerts`` list, logs its message as a warning on the
    ``sk_mnist.monitoring`` logger and passes it to its ``on_alert`` callback.

    Parameters
    ----------
    kind : {"accuracy", "latency", "confidence", "class_distribution"}
        The condition that holds.
    message : str
        What happened, in words; the text that is logged.
    value : float
        The measured value: rolling accuracy, p95 latency in milliseconds,
        mean confidence, or total variation distance.
    threshold : float
        The level ``value`` reached: the accuracy or mean confidence at or
        below which the alert fires, the latency SLO it exceeded, or the
        distance at or above which it fires.
    n_samples : int
        Samples the monitor had predicted in its stream when the alert fired.
    time : float
        When the alert fired, in seconds since the epoch (:func:`time.time`).

    See Also
    --------
    PerformanceMonitor : Raises these alerts.

    Examples
    --------
    >>> from sk_mnist.monitoring import Alert
    >>> alert = Alert(
    ...     kind="latency",
    ...     message="p95 latency 12 ms over the last 50 calls exceeds the SLO of 10.0 ms",
    ...     value=12.0,
    ...     threshold=10.0,
    ...     n_samples=3200,
    ...     time=1.7e9,
    ... )
    >>> alert.kind, alert.value > alert.threshold
    ('latency', True)
    """

    kind: str
    message: str
    value: float
    threshold: float
    n_samples: int
    time: float


class PerformanceMonitor:
    """Monitor a fitted classifier's accuracy, latency and input drift in production.

    The monitor wraps a fitted classifier: :meth:`predict` and
    :meth:`predict_proba` pass through to it and time each call;
    :meth:`observe` predicts and, given the true labels, records which
    predictions were right. Four conditions raise an :class:`Alert`:

    * ``"accuracy"``: the accuracy over the last ``window`` labelled samples
      is ``drop_threshold`` or more below ``baseline_accuracy``;
    * ``"latency"``: the 95th percentile of the latencies of the last
      ``window`` calls exceeds ``latency_slo_ms``;
    * ``"confidence"`` (no labels needed): the mean probability of the
      predicted class over the last ``window`` predictions is
      ``confidence_drop`` or more below its mean on the reference data;
    * ``"class_distribution"`` (no labels needed): the total variation
      distance between the predicted classes of the last ``window``
      predictions and those of the reference data reaches ``class_shift``.

    The two label-free conditions are checked only after :meth:`fit` has
    recorded the reference data. Each alert is appended to :attr:`alerts`,
    logged as a warning by the ``"sk_mnist.monitoring"`` logger and passed to
    ``on_alert``. One incident raises one alert: a condition that holds again
    within ``window`` samples (calls, for latency) of when it last held is
    the same incident, so neither a lasting problem nor a figure that hovers
    at its threshold raises an alert per call.

    Read more in the :ref:`User Guide <monitoring>`.

    Parameters
    ----------
    estimator : fitted classifier
        The model to monitor. It must have ``predict_proba`` and ``classes_``.

    baseline_accuracy : float
        The accuracy the model was validated at, e.g. its score on held-out
        data before deployment.

    drop_threshold : float, default=0.02
        Fall in rolling accuracy below ``baseline_accuracy`` that raises an
        ``"accuracy"`` alert (0.02: two percentage points).

    window : int, default=1000
        How many of the latest labelled samples, predictions and calls the
        rolling figures are computed over.

    latency_slo_ms : float, default=None
        The latency objective per call, in milliseconds, for the 95th
        percentile; judged from the 20th call on (or once a smaller window is
        full), so that one slow first call is no alert. None checks no
        latency (it is still reported).

    on_alert : callable, default=None
        Called with each :class:`Alert` as it fires. An exception it raises
        propagates to the caller of the prediction.

    confidence_drop : float, default=0.05
        Fall in mean confidence below the reference's that raises a
        ``"confidence"`` alert.

    class_shift : float, default=0.1
        Total variation distance between the window's and the reference's
        predicted-class distributions that raises a ``"class_distribution"``
        alert: the share of predictions that would have to change class for
        the two distributions to agree.

    min_samples : int, default=None
        Fewest samples a window must hold before its accuracy, confidence or
        class distribution is judged. None means ``window``: only full windows
        are judged.

    Attributes
    ----------
    alerts : list of Alert
        Every alert raised, oldest first.

    n_samples_ : int
        Samples predicted since construction or :meth:`reset`.

    n_labelled_ : int
        Of those, samples whose true label was given to :meth:`observe`.

    n_calls_ : int
        Calls to :meth:`predict`, :meth:`predict_proba` and :meth:`observe`
        since construction or :meth:`reset`.

    reference_confidence_ : float
        Mean probability of the predicted class on the reference data. Set
        by :meth:`fit`.

    reference_distribution_ : ndarray of shape (n_classes,)
        Share of the reference data predicted as each class, in the order of
        the estimator's ``classes_``. Set by :meth:`fit`.

    See Also
    --------
    Alert : What an alert holds.
    sk_mnist.MNISTCNNClassifier : The classifier this package trains.

    Notes
    -----
    The label-free baseline is established by :meth:`fit` on reference data:
    held-out images like those the model will serve, never its training
    images, on which it is more confident than on new ones. Both label-free
    checks are needed: rotated digits lower the CNN's confidence, but under
    heavy noise it grows more confident while calling nearly every digit the
    same class, which only the class distribution shows. That distribution is
    compared by total variation distance, an effect size: a chi-square test
    would flag ever smaller, harmless changes of the class mix as the window
    grows, and PSI is undefined for classes predicted zero times. Sampling
    noise alone gives ten balanced classes a distance of about
    ``1.2 * sqrt(1 / n_window + 1 / n_reference)`` (0.05 for 1000 and 1000),
    well under the default ``class_shift`` of 0.1; smaller windows need a
    larger threshold.

    Alerts are logged with :mod:`logging`, not :mod:`warnings`: the warnings
    filter shows a warning once per code location, so later alerts would be
    dropped, and ``-W error`` would turn an alert into an exception in the
    serving code. Logs reach the handlers production already has.

    The monitor is not a scikit-learn estimator: it wraps a model that is
    already fitted and accumulates state from a stream, so cloning it or
    cross-validating it means nothing. It follows the conventions that fit:
    parameters stored as given (and validated at construction), learnt state
    in attributes ending in ``_``. :meth:`predict` returns the class of
    highest probability, as ``MNISTCNNClassifier.predict`` does, so that one
    model call gives both the labels and the confidence. One monitor serves
    one stream; it takes no lock, so threads that share a monitor must
    serialize their calls.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sk_mnist import load_mnist
    >>> from sk_mnist.monitoring import PerformanceMonitor
    >>> X, y = load_mnist("test", return_X_y=True)
    >>> clf = KNeighborsClassifier().fit(X[:2000], y[:2000])
    >>> X_ref, y_ref = X[2000:2500], y[2000:2500]
    >>> monitor = PerformanceMonitor(clf, clf.score(X_ref, y_ref), window=500).fit(X_ref)
    >>> y_pred = monitor.observe(X[2500:3000], y[2500:3000])  # clean digits
    >>> monitor.alerts
    []
    >>> turned = np.rot90(X[3000:3500].reshape(-1, 28, 28), axes=(1, 2)).reshape(-1, 784)
    >>> y_pred = monitor.observe(turned, y[3000:3500])  # digits on their side
    >>> [alert.kind for alert in monitor.alerts]
    ['accuracy', 'confidence', 'class_distribution']
    >>> report = monitor.report()
    >>> round(report["accuracy"], 2), report["n_alerts"]
    (0.14, 3)
    >>> monitor
    PerformanceMonitor(KNeighborsClassifier(), baseline_accuracy=0.86, window=500)
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["predict_proba"])],
        "baseline_accuracy": [Interval(Real, 0, 1, closed="both")],
        "drop_threshold": [Interval(Real, 0, 1, closed="right")],
        "window": [Interval(Integral, 1, None, closed="left")],
        "latency_slo_ms": [Interval(Real, 0, None, closed="neither"), None],
        "on_alert": [callable, None],
        "confidence_drop": [Interval(Real, 0, 1, closed="right")],
        "class_shift": [Interval(Real, 0, 1, closed="right")],
        "min_samples": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self,
        estimator,
        baseline_accuracy,
        *,
        drop_threshold=0.02,
        window=1000,
        latency_slo_ms=None,
        on_alert=None,
        confidence_drop=0.05,
        class_shift=0.1,
        min_samples=None,
    ):
        self.estimator = estimator
        self.baseline_accuracy = baseline_accuracy
        self.drop_threshold = drop_threshold
        self.window = window
        self.latency_slo_ms = latency_slo_ms
        self.on_alert = on_alert
        self.confidence_drop = confidence_drop
        self.class_shift = class_shift
        self.min_samples = min_samples
        # Validated here, not at fit as in scikit-learn: fit is optional, and
        # a monitor with a bad parameter would fail in the serving path.
        validate_parameter_constraints(
            self._parameter_constraints, vars(self).copy(), caller_name=type(self).__name__
        )
        check_is_fitted(estimator)
        if min_samples is not None and min_samples > window:
            raise ValueError(
                f"min_samples={min_samples} cannot exceed window={window}: windows never hold more."
            )
        self.reset()

    def fit(self, X):
        """Record the reference that the label-free drift checks compare with.

        The estimator predicts ``X``; the mean probability of its predicted
        class and the share of each predicted class become the reference.
        These predictions are not part of the monitored stream.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Reference data: held-out samples like those the model will serve.

        Returns
        -------
        self : PerformanceMonitor
            This monitor.
        """
        proba = self.estimator.predict_proba(X)
        self.reference_confidence_ = float(proba.max(axis=1).mean())
        counts = np.bincount(proba.argmax(axis=1), minlength=proba.shape[1])
        self.reference_distribution_ = counts / counts.sum()
        return self

    def reset(self):
        """Start a new stream: forget its samples, calls and alerts, keep the reference.

        Returns
        -------
        self : PerformanceMonitor
            This monitor.
        """
        self.alerts = []
        self.n_samples_ = 0
        self.n_labelled_ = 0
        self.n_calls_ = 0
        self._correct = _Window(self.window, bool)
        self._confidence = _Window(self.window, np.float64)
        self._predicted = _Window(self.window, np.intp)
        self._latency_ms = _Window(self.window, np.float64)
        self._call_size = _Window(self.window, np.int64)
        self._firing = set()  # kinds whose condition holds now
        self._last_held = {}  # kind: stream position at which its condition last held
        return self

    def predict_proba(self, X):
        """Class probabilities from the estimator, timed and monitored.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples, in any form the estimator accepts.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            The estimator's ``predict_proba(X)``.
        """
        return self._serve(X)

    def predict(self, X):
        """Predicted classes, timed and monitored.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples, in any form the estimator accepts.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            The class of highest probability for each sample.
        """
        return self.estimator.classes_[self._serve(X).argmax(axis=1)]

    def observe(self, X, y_true):
        """Predict, and record which predictions match the true labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples, in any form the estimator accepts.
        y_true : array-like of shape (n_samples,)
            Their true labels.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            The class of highest probability for each sample.
        """
        # np.ravel, not column_or_1d, which costs more than the rest of the
        # monitoring; labels of another shape fail the length check.
        y_true = np.ravel(y_true)
        check_consistent_length(X, y_true)
        check_label_kind(y_true, self.estimator.classes_, "the monitored estimator")
        return self.estimator.classes_[self._serve(X, y_true).argmax(axis=1)]

    def __repr__(self):
        # As scikit-learn's estimators: the parameters that differ from their defaults.
        defaults = signature(type(self)).parameters
        changed = [
            f"{name}={value!r}"
            for name, value in vars(self).items()
            if name in defaults and name != "estimator" and value != defaults[name].default
        ]
        return f"{type(self).__name__}({', '.join([repr(self.estimator), *changed])})"

    def report(self, *, as_frame=False):
        """The service level indicators of the stream so far.

        Parameters
        ----------
        as_frame : bool, default=False
            Whether to return a pandas DataFrame of one row, the indicators
            as columns, so that reports taken over time concatenate into a
            timeline (``pandas.concat``). Needs pandas.

        Returns
        -------
        report : dict or pandas.DataFrame
            ``n_samples`` and ``n_labelled``: samples predicted and labelled;
            ``accuracy``: over the last ``window`` labelled samples;
            ``baseline_accuracy``; ``mean_confidence``: mean probability of
            the predicted class over the last ``window`` predictions;
            ``class_shift``: their total variation distance from the
            reference class distribution; ``latency_p50_ms``,
            ``latency_p95_ms``, ``latency_p99_ms`` and ``throughput_per_s``
            (samples per second of model time): over the last ``window``
            calls; ``n_alerts``: alerts raised; ``active_alerts``: kinds whose
            condition holds now. Figures with nothing to measure yet are NaN.
        """
        latency = self._latency_ms.values
        p50, p95, p99 = np.percentile(latency, [50, 95, 99]) if latency.size else (math.nan,) * 3
        throughput = 1000 * float(self._call_size.values.sum() / latency.sum()) if latency.size else math.nan
        report = {
            "n_samples": self.n_samples_,
            "n_labelled": self.n_labelled_,
            "accuracy": _mean(self._correct.values),
            "baseline_accuracy": self.baseline_accuracy,
            "mean_confidence": _mean(self._confidence.values),
            "class_shift": self._class_shift(),
            "latency_p50_ms": float(p50),
            "latency_p95_ms": float(p95),
            "latency_p99_ms": float(p99),
            "throughput_per_s": throughput,
            "n_alerts": len(self.alerts),
            "active_alerts": sorted(self._firing),
        }
        if as_frame:
            return require("pandas", "report", "a report as a DataFrame").DataFrame([report])
        return report

    # -- the stream -----------------------------------------------------------

    def _serve(self, X, y_true=None):
        start = time.perf_counter()
        proba = self.estimator.predict_proba(X)
        self._latency_ms.extend(np.array([1000 * (time.perf_counter() - start)]))
        self._call_size.extend(np.array([len(proba)]))
        predicted = proba.argmax(axis=1)
        self._confidence.extend(proba[np.arange(len(proba)), predicted])
        self._predicted.extend(predicted)
        self.n_samples_ += len(proba)
        self.n_calls_ += 1
        if y_true is not None:
            self._correct.extend(self.estimator.classes_[predicted] == y_true)
            self.n_labelled_ += len(y_true)
        self._check()
        return proba

    def _check(self):
        """Raise an alert for each condition that holds, unless it continues an incident."""
        for kind, breach in self._breaches().items():
            if breach is None:
                self._firing.discard(kind)
                continue
            self._firing.add(kind)
            # Re-arming as soon as a condition cleared would raise an alert at
            # every crossing of a figure that hovers at its threshold; a whole
            # window without the condition ends the incident instead.
            position = self.n_calls_ if kind == "latency" else self.n_samples_
            last = self._last_held.get(kind)
            if last is None or position - last >= self.window:
                self._raise(kind, *breach)
            self._last_held[kind] = position

    def _breaches(self):
        """Each condition's breach as (value, threshold, message); None where it does not hold."""
        breaches = (self._accuracy_breach, self._latency_breach, self._confidence_breach, self._class_breach)
        return {kind: breach() for kind, breach in zip(ALERT_KINDS, breaches)}

    def _judged(self, window):
        return len(window.values) >= (self.window if self.min_samples is None else self.min_samples)

    def _accuracy_breach(self):
        if not self._judged(self._correct):
            return None
        accuracy = _mean(self._correct.values)
        drop = self.baseline_accuracy - accuracy
        # isclose: 0.98 - 0.96 must count as the two-point drop it is.
        if drop < self.drop_threshold and not math.isclose(drop, self.drop_threshold):
            return None
        message = (
            f"rolling accuracy {accuracy:.4f} over the last {len(self._correct.values)} labelled samples "
            f"is {drop:.4f} below the baseline {self.baseline_accuracy:.4f} (alert at {self.drop_threshold})"
        )
        return accuracy, self.baseline_accuracy - self.drop_threshold, message

    def _latency_breach(self):
        latency = self._latency_ms.values
        if self.latency_slo_ms is None or latency.size < min(_MIN_CALLS_FOR_P95, self.window):
            return None
        p95 = float(np.percentile(latency, 95))
        if p95 <= self.latency_slo_ms:
            return None
        message = (
            f"p95 latency {p95:.3g} ms over the last {latency.size} calls "
            f"exceeds the SLO of {self.latency_slo_ms} ms"
        )
        return p95, self.latency_slo_ms, message

    def _confidence_breach(self):
        if not hasattr(self, "reference_confidence_") or not self._judged(self._confidence):
            return None
        confidence = _mean(self._confidence.values)
        drop = self.reference_confidence_ - confidence
        if drop < self.confidence_drop:
            return None
        message = (
            f"mean confidence {confidence:.4f} over the last {len(self._confidence.values)} predictions is "
            f"{drop:.4f} below the reference {self.reference_confidence_:.4f} "
            f"(alert at {self.confidence_drop})"
        )
        return confidence, self.reference_confidence_ - self.confidence_drop, message

    def _class_breach(self):
        if not self._judged(self._predicted):
            return None
        distance = self._class_shift()
        if not distance >= self.class_shift:  # also None when there is no reference
            return None
        message = (
            f"predicted classes over the last {len(self._predicted.values)} predictions are {distance:.4f} "
            f"from the reference distribution (total variation; alert at {self.class_shift})"
        )
        return distance, self.class_shift, message

    def _class_shift(self):
        """Total variation distance of the window's predicted classes from the reference's."""
        predicted = self._predicted.values
        if not hasattr(self, "reference_distribution_") or not predicted.size:
            return math.nan
        reference = self.reference_distribution_
        distribution = np.bincount(predicted, minlength=len(reference)) / predicted.size
        return 0.5 * float(np.abs(distribution - reference).sum())

    def _raise(self, kind, value, threshold, message):
        alert = Alert(kind, message, float(value), float(threshold), self.n_samples_, time.time())
        self.alerts.append(alert)
        _logger.warning("%s alert: %s", kind, message, extra={"alert": alert})
        if self.on_alert is not None:
            self.on_alert(alert)


class PrometheusCollector:
    """Expose a monitor's service level indicators as Prometheus metrics, read at each scrape.

    A custom collector for ``prometheus_client``: each scrape reads
    :meth:`PerformanceMonitor.report`, so the metrics are never stale and the
    serving code records nothing twice. Register it with a registry
    (``prometheus_client.REGISTRY.register(PrometheusCollector(monitor))``)
    and serve that registry as usual (``prometheus_client.start_http_server``
    or the WSGI/ASGI apps). Needs the ``monitoring`` extra
    (``pip install "sk_mnist[monitoring]"``).

    The metrics, each prefixed with ``namespace`` and carrying ``labels``:

    ==================================  =======  ====================================
    metric                              type     value
    ==================================  =======  ====================================
    ``_samples_total``                  counter  samples predicted
    ``_labelled_samples_total``         counter  samples whose true label was observed
    ``_accuracy``                       gauge    rolling accuracy (NaN before labels)
    ``_baseline_accuracy``              gauge    the monitor's ``baseline_accuracy``
    ``_mean_confidence``                gauge    rolling mean confidence
    ``_class_shift``                    gauge    distance of the predicted classes
                                                 from the reference
    ``_latency_seconds{quantile=...}``  gauge    p50, p95 and p99 call latency
    ``_throughput_samples_per_second``  gauge    samples per second of model time
    ``_alerts_total``                   counter  alerts raised
    ``_alert_active{kind=...}``         gauge    1 where the condition holds now, else 0
    ==================================  =======  ====================================

    Parameters
    ----------
    monitor : PerformanceMonitor
        The monitor whose report is exported.
    namespace : str, default="sk_mnist"
        Prefix of every metric's name.
    labels : dict of str to str, default=None
        Labels every metric carries, such as ``{"model": "cnn-v3"}``, to tell
        the monitors of several models apart.

    See Also
    --------
    PerformanceMonitor.report : The same indicators, as a dict.

    Examples
    --------
    >>> from prometheus_client import CollectorRegistry, generate_latest
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sk_mnist import load_mnist
    >>> from sk_mnist.monitoring import PerformanceMonitor, PrometheusCollector
    >>> X, y = load_mnist("test", return_X_y=True)
    >>> monitor = PerformanceMonitor(KNeighborsClassifier().fit(X[:1000], y[:1000]), 0.9)
    >>> y_pred = monitor.observe(X[-200:], y[-200:])
    >>> registry = CollectorRegistry()
    >>> registry.register(PrometheusCollector(monitor, labels={"model": "knn"}))
    >>> registry.get_sample_value("sk_mnist_samples_total", {"model": "knn"})
    200.0
    >>> print(generate_latest(registry).decode().splitlines()[0])
    # HELP sk_mnist_samples_total Samples predicted.
    """

    def __init__(self, monitor, *, namespace="sk_mnist", labels=None):
        if not isinstance(monitor, PerformanceMonitor):
            raise TypeError(f"monitor must be a PerformanceMonitor; got {type(monitor).__name__}.")
        self.monitor = monitor
        self.namespace = namespace
        self.labels = dict(labels or {})

    def collect(self):
        """Read the monitor's report and yield it as metric families.

        Yields
        ------
        metric : prometheus_client.core.Metric
            One family per indicator, in the order of the table above.
        """
        core = require("prometheus_client.core", "monitoring", "the Prometheus metrics")
        report = self.monitor.report()
        names, values = list(self.labels), list(self.labels.values())

        def family(kind, name, documentation, value, extra=()):
            metric = kind(f"{self.namespace}_{name}", documentation, labels=[*names, *extra])
            if not extra:
                metric.add_metric(values, float(value))
            return metric

        yield family(core.CounterMetricFamily, "samples", "Samples predicted.", report["n_samples"])
        yield family(
            core.CounterMetricFamily,
            "labelled_samples",
            "Samples whose true label was observed.",
            report["n_labelled"],
        )
        for key, documentation in (
            ("accuracy", "Accuracy over the last window of labelled samples."),
            ("baseline_accuracy", "The accuracy the model was validated at."),
            ("mean_confidence", "Mean probability of the predicted class over the last window."),
            ("class_shift", "Total variation distance of the predicted classes from the reference."),
        ):
            yield family(core.GaugeMetricFamily, key, documentation, report[key])
        latency = family(
            core.GaugeMetricFamily,
            "latency_seconds",
            "Latency of the last window of calls.",
            None,
            ["quantile"],
        )
        for quantile in ("50", "95", "99"):
            latency.add_metric([*values, f"0.{quantile}"], report[f"latency_p{quantile}_ms"] / 1000)
        yield latency
        yield family(
            core.GaugeMetricFamily,
            "throughput_samples_per_second",
            "Samples per second of model time over the last window of calls.",
            report["throughput_per_s"],
        )
        yield family(core.CounterMetricFamily, "alerts", "Alerts raised.", report["n_alerts"])
        active = family(
            core.GaugeMetricFamily, "alert_active", "1 where an alert's condition holds now.", None, ["kind"]
        )
        for kind in ALERT_KINDS:
            active.add_metric([*values, kind], float(kind in report["active_alerts"]))
        yield active


@validate_params(
    {"X": ["array-like"], "kind": [StrOptions({"rotated", "noisy"})], "random_state": ["random_state"]},
    prefer_skip_nested_validation=True,
)
def make_drifted(X, kind, *, random_state=None):
    """Make digits as a model in production may come to see them, for trying a monitor.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Square grayscale images as rows of pixels in 0-255, e.g. MNIST's
        (n, 784).
    kind : {"rotated", "noisy"}
        ``"rotated"`` turns each image by its own random angle of 45 to 90
        degrees, either way (bilinear; the corners brought in are 0);
        ``"noisy"`` adds Gaussian noise of half the pixel range (standard
        deviation 127.5) and clips back to 0-255.
    random_state : int, RandomState instance or None, default=None
        Seeds the angles or the noise.

    Returns
    -------
    X_drifted : ndarray of shape (n_samples, n_features), dtype uint8
        The drifted images; ``X`` is left unchanged.

    See Also
    --------
    PerformanceMonitor : Raises alerts when served data drifts like this.

    Examples
    --------
    >>> from sk_mnist import load_mnist
    >>> from sk_mnist.monitoring import make_drifted
    >>> X, _ = load_mnist("test", return_X_y=True)
    >>> rotated = make_drifted(X[:5], "rotated", random_state=0)
    >>> rotated.shape, rotated.dtype, bool((rotated != X[:5]).any())
    ((5, 784), dtype('uint8'), True)
    """
    X = check_array(X, dtype=np.float64)
    side = math.isqrt(X.shape[1])
    if side * side != X.shape[1]:
        raise ValueError(f"make_drifted needs rows of square images; got {X.shape[1]} features per row.")
    rng = check_random_state(random_state)
    if kind == "noisy":
        drifted = X + rng.normal(0, 0.5 * 255, X.shape)
    else:
        from scipy import ndimage

        angles = rng.uniform(45, 90, len(X)) * rng.choice([-1, 1], len(X))
        images = X.reshape(-1, side, side)
        drifted = np.stack(
            [ndimage.rotate(image, angle, reshape=False, order=1) for image, angle in zip(images, angles)]
        ).reshape(X.shape)
    return np.clip(np.rint(drifted), 0, 255).astype(np.uint8)


class _Window:
    """The last ``size`` values of a stream, in a fixed array (not in order)."""

    def __init__(self, size, dtype):
        self._buffer = np.empty(size, dtype=dtype)
        self._count = 0  # values ever added

    def extend(self, values):
        size = len(self._buffer)
        tail = values[-size:]  # of a batch longer than the window, only the tail stays
        start = self._count + len(values) - len(tail)
        self._buffer[(start + np.arange(len(tail))) % size] = tail
        self._count += len(values)

    @property
    def values(self):
        return self._buffer[: min(self._count, len(self._buffer))]


def _mean(values):
    return float(values.mean()) if values.size else math.nan
