"""Fuzz the IDX reader at length: the property of tests/test_fuzz_idx.py on many cases.

Usage: python benchmarks/fuzz_idx.py [N_CASES] [SEED]   (default 5000 cases, a random seed)

Each case is raw or gzip bytes drawn by the test's hypothesis strategies
(random bytes, valid files, hostile headers, mutated files). ``read_idx``
must return the reference decoder's array or raise ``ValueError`` exactly
when the reference finds no valid file, within the test's memory bound.
Unlike the test, a failing case does not stop the run: every crash is
counted and the first few are printed. The exit status is 1 if any case
crashed.
"""

import random
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path

import hypothesis
from hypothesis import HealthCheck

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_fuzz_idx import check_read_idx, idx_inputs


def main(n_cases=5000, seed=None):
    seed = random.randrange(2**32) if seed is None else seed
    outcomes = Counter()
    crashes = []

    @hypothesis.seed(seed)
    @hypothesis.settings(
        max_examples=n_cases,
        deadline=None,
        database=None,
        # Hypothesis would otherwise stop early once it believes it has seen enough.
        phases=[hypothesis.Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(idx_inputs)
    def run(data):
        try:
            outcomes[check_read_idx(data)] += 1
        except Exception as exc:  # noqa: BLE001 (a crash of any kind: recorded, and the run goes on)
            outcomes["crash"] += 1
            crashes.append((data, exc))

    tracemalloc.start()
    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    tried = sum(outcomes.values())
    print(
        f"seed {seed}: {tried} cases in {seconds:.1f} s: {outcomes['array']} read as arrays, "
        f"{outcomes['ValueError']} refused with ValueError, {outcomes['crash']} crashes"
    )
    for data, exc in crashes[:5]:
        print(f"  crash: {type(exc).__name__}: {exc}\n    input ({len(data)} bytes): {data[:64].hex()}")
    return 1 if crashes else 0


if __name__ == "__main__":
    args = [int(arg) for arg in sys.argv[1:3]]
    sys.exit(main(*args))
