"""ema_decay: the fitted network takes an exponential moving average of its weights."""

import pytest
import torch
from conftest import InterruptAfter, assert_same_weights
from sklearn.utils._param_validation import InvalidParameterError
from skorch.callbacks import Callback

from sk_mnist import MNISTCNNClassifier, load, save
from sk_mnist.modules import output_layer

PARAMS = {"max_epochs": 2, "batch_size": 128, "random_state": 0}


class RecordWeights(Callback):
    """The network's own state after every training batch (user callbacks run after the recipe's)."""

    def on_train_begin(self, net, **kwargs):
        self.states = []

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            self.states.append({k: v.detach().clone() for k, v in net.module_.state_dict().items()})


@pytest.fixture(scope="module")
def data(small_mnist):
    X, y, _, _ = small_mnist
    return X[:600], y[:600]


def weights(clf):
    return clf.module_.state_dict()


def test_fitted_network_is_the_moving_average_of_its_batches(data):
    decay = 0.9
    recorder = RecordWeights()
    clf = MNISTCNNClassifier(ema_decay=decay, callbacks=[recorder], **PARAMS).fit(*data)
    assert len(recorder.states) == 2 * 5  # 600 training images in batches of 128, twice
    expected = dict(recorder.states[0])
    for state in recorder.states[1:]:
        for name, value in state.items():
            if value.is_floating_point():
                expected[name] = decay * expected[name] + (1 - decay) * value
    for name, value in weights(clf).items():
        if value.is_floating_point():
            torch.testing.assert_close(value, expected[name], rtol=1e-5, atol=1e-6, msg=name)
    # Weights and batch-norm statistics alike differ from the last batch's.
    last = recorder.states[-1]
    differ = {name for name, value in weights(clf).items() if not torch.equal(value, last[name])}
    assert any("running_mean" in name for name in differ) and any("weight" in name for name in differ)


def test_a_decay_of_zero_keeps_the_last_weights(data):
    assert_same_weights(
        MNISTCNNClassifier(ema_decay=0.0, **PARAMS).fit(*data), MNISTCNNClassifier(**PARAMS).fit(*data)
    )


def test_partial_fit_trains_the_networks_own_weights(data):
    X, y = data
    recorder = RecordWeights()
    clf = MNISTCNNClassifier(ema_decay=0.5, callbacks=[recorder], **PARAMS).fit(X[:300], y[:300])
    fitted = {name: value.clone() for name, value in weights(clf).items()}
    clf.partial_fit(X[300:], y[300:])
    # The network ends with its own last batch's weights, not an average.
    assert len(recorder.states) > 1
    for name, value in weights(clf).items():
        assert torch.equal(value, recorder.states[-1][name]), name
    assert any(not torch.equal(value, fitted[name]) for name, value in weights(clf).items())


def test_resume_continues_the_average_exactly(data, tmp_path):
    params = {**PARAMS, "max_epochs": 3, "ema_decay": 0.9}
    uninterrupted = MNISTCNNClassifier(**params).fit(*data)
    with pytest.warns(UserWarning, match="keeps the moving average of its weights so far"):
        MNISTCNNClassifier(checkpoint_dir=tmp_path, callbacks=[InterruptAfter(2)], **params).fit(*data)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["weight_average"]["n_averaged"] == 2 * 5
    resumed = MNISTCNNClassifier(checkpoint_dir=tmp_path, resume=True, **params).fit(*data)
    assert resumed.n_iter_ == 3
    assert_same_weights(resumed, uninterrupted)
    # A finished fit resumes to the same averaged network, without a step.
    again = MNISTCNNClassifier(checkpoint_dir=tmp_path, resume=True, **params).fit(*data)
    assert_same_weights(again, uninterrupted)


@pytest.mark.parametrize("decay", [1.0, -0.1, 2])
def test_decay_outside_zero_to_one_is_refused(decay, data):
    with pytest.raises(InvalidParameterError, match="'ema_decay' parameter of MNISTCNNClassifier"):
        MNISTCNNClassifier(ema_decay=decay).fit(*data)


def test_model_file_keeps_the_parameter(data, tmp_path):
    clf = MNISTCNNClassifier(ema_decay=0.9, **PARAMS).fit(*data)
    save(clf, tmp_path / "ema.skm")
    restored = load(tmp_path / "ema.skm")
    assert restored.ema_decay == 0.9
    assert_same_weights(restored, clf)


def test_distilled_student_averages_too(lenet_teacher, small_mnist):
    from sk_mnist import DistilledCNNClassifier

    X, y, _, _ = small_mnist
    params = {"teacher": lenet_teacher, "max_epochs": 1, "random_state": 0}
    plain = DistilledCNNClassifier(**params).fit(X[:600], y[:600])
    averaged = DistilledCNNClassifier(ema_decay=0.9, **params).fit(X[:600], y[:600])
    last = DistilledCNNClassifier(ema_decay=0.0, **params).fit(X[:600], y[:600])
    assert_same_weights(last, plain)
    assert not torch.equal(
        output_layer(averaged.module_.network).weight, output_layer(plain.module_.network).weight
    )
