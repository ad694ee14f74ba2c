"""The regularization search on a Dask cluster: fits on the workers, scores equal to a local run."""

import os

import joblib
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

    def threads(estimator, X, y):
        import torch

        return torch.get_num_threads()

    scoring = {"accuracy": "accuracy", "pid": pid, "threads": threads}
    return search.set_params(scoring=scoring, refit=False)


def test_search_runs_on_dask_workers_with_local_scores(small_mnist):
    X, y = small_mnist[0][:600], small_mnist[1][:600]
    # The local run: two worker processes with one torch thread each, as the
    # Dask workers below have. Pinned: joblib's default gives each worker
    # cpu_count // n_jobs threads, one only on machines of at most 3 cores,
    # and fits are bit-identical only for equal thread counts.
    with joblib.parallel_config(backend="loky", inner_max_num_threads=1):
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
    local_pids = set(local.cv_results_["split0_test_pid"]) | set(local.cv_results_["split1_test_pid"])
    assert os.getpid() not in local_pids  # the local fits ran in worker processes too
    # One torch thread per fit on both sides.
    for search in (local, on_dask):
        for i in range(2):
            assert set(search.cv_results_[f"split{i}_test_threads"]) == {1}
    np.testing.assert_array_equal(
        on_dask.cv_results_["mean_test_accuracy"], local.cv_results_["mean_test_accuracy"]
    )
    np.testing.assert_array_equal(
        on_dask.cv_results_["split0_test_accuracy"], local.cv_results_["split0_test_accuracy"]
    )
