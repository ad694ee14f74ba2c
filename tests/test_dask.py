"""The regularization search on a Dask cluster: fits on the workers, scores equal to a local run."""

import os

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from sk_mnist.search import fit_search, make_search

GRID = {"cnn__dropout": [0.0, 0.5], "cnn__batch_norm": [True, False]}


def _search(n_jobs=None):
    search = make_search(GRID, cv=2, n_jobs=n_jobs, max_epochs=2, early_stopping=False, refit=False)

    # Defined here, not at module level, so that it travels to the workers by
    # value: they need not import this test module.
    def pid(estimator, X, y):
        return os.getpid()

    return search.set_params(scoring={"accuracy": "accuracy", "pid": pid}, refit=False)


def test_search_runs_on_dask_workers_with_local_scores(small_mnist):
    X, y = small_mnist[0][:600], small_mnist[1][:600]
    # The local run: two worker processes with one torch thread each, as the
    # Dask workers below have.
    local = _search(n_jobs=2).fit(X, y)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        with distributed.Client(cluster) as client:
            worker_pids = set(client.run(os.getpid).values())
        on_dask = fit_search(_search(), X, y, scheduler=cluster.scheduler_address)
    assert cluster.status.name == "closed"

    pids = {
        int(on_dask.cv_results_[f"split{i}_test_pid"][c])
        for i in range(2)
        for c in range(len(on_dask.cv_results_["params"]))
    }
    assert pids <= worker_pids and os.getpid() not in pids
    np.testing.assert_array_equal(
        on_dask.cv_results_["mean_test_accuracy"], local.cv_results_["mean_test_accuracy"]
    )
    np.testing.assert_array_equal(
        on_dask.cv_results_["split0_test_accuracy"], local.cv_results_["split0_test_accuracy"]
    )
