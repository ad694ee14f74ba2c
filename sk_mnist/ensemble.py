"""Ensembles of CNNs that differ in their random seed, and optionally in chosen parameters."""

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
        "member_params": [list, None],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
    },
    prefer_skip_nested_validation=True,
)
def make_cnn_ensemble(
    n_estimators=5, voting="soft", *, member_params=None, random_state=None, n_jobs=None, **cnn_params
):
    """Build a committee of CNNs that differ in their seed, and optionally more.

    Members share every parameter but ``random_state``, so they differ in
    initial weights, dropout masks, batch order and augmentation: enough
    diversity for a soft vote to beat each member. ``member_params`` makes
    them differ in more, such as the kernels of their convolutions.

    Parameters
    ----------
    n_estimators : int, default=5
        Number of networks.
    voting : {"soft", "hard"}, default="soft"
        Average the predicted probabilities ("soft") or take the majority of
        the predicted labels ("hard").
    member_params : list of dict, default=None
        Parameters that differ between members: member ``i`` takes
        ``member_params[i % len(member_params)]`` on top of ``cnn_params``,
        so three dicts and ``n_estimators=5`` give the members the first,
        second, third, first and second dict. None gives every member
        ``cnn_params`` alone.
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

    Members whose first convolutions differ in kernel size (see
    :class:`~sk_mnist.modules.DeepCNN`):

    >>> kernels = [{"module__kernel_sizes": (size, 3, 3)} for size in (5, 3, 7)]
    >>> mixed = make_cnn_ensemble(5, member_params=kernels, architecture="deep")
    >>> [est.get_params()["module__kernel_sizes"][0] for _, est in mixed.estimators]
    [5, 3, 7, 5, 3]
    """
    if member_params is None:
        member_params = [{}]
    if not member_params or not all(isinstance(params, dict) for params in member_params):
        raise ValueError(f"member_params must be a non-empty list of dicts; got {member_params!r}")
    if len(member_params) > n_estimators:
        raise ValueError(
            f"member_params has {len(member_params)} entries for {n_estimators} members: some would go unused"
        )
    if any("random_state" in params for params in member_params):
        raise ValueError("member_params cannot set random_state: random_state draws each member's seed")
    seeds = check_random_state(random_state).randint(2**31 - 1, size=n_estimators)
    members = [
        (
            f"cnn_{i}",
            MNISTCNNClassifier(
                **{**cnn_params, **member_params[i % len(member_params)]}, random_state=int(seed)
            ),
        )
        for i, seed in enumerate(seeds)
    ]
    return VotingClassifier(members, voting=voting, n_jobs=n_jobs)
