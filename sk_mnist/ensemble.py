"""Ensembles of CNNs that differ only in their random seed."""

from numbers import Integral

from sklearn.ensemble import VotingClassifier
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from ._classifier import MNISTCNNClassifier

__all__ = ["make_cnn_ensemble"]


@validate_params(
    {
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "voting": [StrOptions({"soft", "hard"})],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
    },
    prefer_skip_nested_validation=True,
)
def make_cnn_ensemble(n_estimators=5, voting="soft", *, random_state=None, n_jobs=None, **cnn_params):
    """Build a committee of CNNs that differ only in their seed.

    Members share every parameter but ``random_state``, so they differ in
    initial weights, dropout masks, batch order and augmentation: enough
    diversity for a soft vote to beat each member.

    Parameters
    ----------
    n_estimators : int, default=5
        Number of networks.
    voting : {"soft", "hard"}, default="soft"
        Average the predicted probabilities ("soft") or take the majority of
        the predicted labels ("hard").
    random_state : int, RandomState instance or None, default=None
        Draws the members' seeds. An int makes the whole ensemble reproducible.
    n_jobs : int, default=None
        Members fitted in parallel (see :class:`~sklearn.ensemble.VotingClassifier`).
    **cnn_params : dict
        Parameters of every :class:`MNISTCNNClassifier`.

    Returns
    -------
    ensemble : sklearn.ensemble.VotingClassifier
        Unfitted; its members are named ``cnn_0``, ``cnn_1``, ... so that
        searches can address them (``cnn_0__dropout``).

    See Also
    --------
    MNISTCNNClassifier : One member.
    sklearn.ensemble.VotingClassifier : The ensemble returned.

    Examples
    --------
    >>> from sk_mnist import make_cnn_ensemble
    >>> ensemble = make_cnn_ensemble(3, random_state=0, max_epochs=2)
    >>> [name for name, _ in ensemble.estimators]
    ['cnn_0', 'cnn_1', 'cnn_2']
    >>> ensemble.estimators[0][1].max_epochs
    2
    """
    seeds = check_random_state(random_state).randint(2**31 - 1, size=n_estimators)
    members = [
        (f"cnn_{i}", MNISTCNNClassifier(**cnn_params, random_state=int(seed))) for i, seed in enumerate(seeds)
    ]
    return VotingClassifier(members, voting=voting, n_jobs=n_jobs)
