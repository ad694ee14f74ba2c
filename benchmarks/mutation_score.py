"""Mutation score of the core modules: how many planted bugs the test suite catches.

Usage: python benchmarks/mutation_score.py [--max-children 2] [PATTERN ...]

Runs mutmut (configured under ``[tool.mutmut]`` in pyproject.toml: which modules,
which tests) from the repository root, then writes docs/mutation.md: per module,
the mutants generated, killed (a test failed, crashed or timed out), explained as
equivalent (benchmarks/mutation_equivalent.toml: a mutant no test can kill because
the program behaves the same) and surviving, the score killed / (generated -
equivalent), and every unexplained survivor with its changed line.

PATTERNs are mutmut mutant-name globs (``"sk_mnist.preprocessing*"``) to run
part of the set; results accumulate in ``mutants/`` across runs, and mutmut
reruns only what the source or the tests changed. The full run takes hours on
two cores: not a CI job. Needs ``pip install -e ".[mutation]"``.
"""

import argparse
import json
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT = ROOT / "benchmarks" / "mutation_equivalent.toml"
KILLED = {"killed", "timeout", "segfault", "caught by type check"}


def read_results(mutants_dir):
    """``{module: {mutant name: status}}`` from mutmut's per-file records."""
    results = {}
    for meta in sorted(mutants_dir.rglob("*.py.meta")):
        source = meta.relative_to(mutants_dir).with_suffix("").with_suffix("")
        module = ".".join(source.parts)
        exit_codes = json.loads(meta.read_text())["exit_code_by_key"]
        results[module] = {name: status_by_exit_code[code] for name, code in exit_codes.items()}
    return results


def changed_line(name):
    """The mutant's new line(s), from ``mutmut show``."""
    diff = subprocess.run(["mutmut", "show", name], cwd=ROOT, capture_output=True, text=True).stdout
    added = [line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    return " / ".join(added) or "(see mutmut show)"


def summarize(results, equivalent):
    rows, survivors = [], []
    for module, statuses in results.items():
        counts = Counter(statuses.values())
        killed = sum(counts[s] for s in KILLED)
        explained = sum(1 for name in statuses if name in equivalent and statuses[name] not in KILLED)
        live = [name for name, s in statuses.items() if s not in KILLED and name not in equivalent]
        considered = len(statuses) - explained
        score = 100 * killed / considered if considered else 100.0
        rows.append((module, len(statuses), killed, explained, len(live), counts["not checked"], score))
        survivors += [(name, statuses[name]) for name in live]
    return rows, survivors


def write_markdown(rows, survivors, equivalent, path):
    total = [sum(r[i] for r in rows) for i in range(1, 6)]
    considered = total[0] - total[2]
    overall = 100 * total[1] / considered if considered else 100.0
    lines = [
        "# Mutation score",
        "",
        "How many small planted bugs (mutants: an operator flipped, a constant changed, a",
        "call dropped) the test suite catches in the core modules. Written by",
        "`python benchmarks/mutation_score.py`; configuration under `[tool.mutmut]` in",
        "pyproject.toml. Score = killed / (generated - equivalent); a mutant is killed",
        "when a test fails, crashes or times out. Equivalent mutants, which change no",
        "behaviour a caller can see, are explained in `benchmarks/mutation_equivalent.toml`.",
        "",
        "| module | mutants | killed | equivalent | surviving | not run | score |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for module, n, killed, explained, live, unchecked, score in rows:
        lines.append(f"| `{module}` | {n} | {killed} | {explained} | {live} | {unchecked} | {score:.1f}% |")
    lines.append(
        f"| **all** | {total[0]} | {total[1]} | {total[2]} | {total[3]} | {total[4]} | **{overall:.1f}%** |"
    )
    if survivors:
        lines += ["", "## Surviving mutants", "", "| mutant | status | changed to |", "|---|---|---|"]
        for name, status in survivors:
            new = changed_line(name).replace("|", "\\|")
            lines.append(f"| `{name}` | {status} | `{new}` |")
    path.write_text("\n".join(lines) + "\n")
    return overall


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patterns", nargs="*", help="mutant-name globs to run (default: all)")
    parser.add_argument("--max-children", type=int, default=2, help="mutants tested at once")
    parser.add_argument("--report-only", action="store_true", help="write the page from the last results")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "mutation.md")
    args = parser.parse_args(argv)

    if not args.report_only:
        command = ["mutmut", "run", "--max-children", str(args.max_children), *args.patterns]
        subprocess.run(command, cwd=ROOT, check=True)
    equivalent = tomllib.loads(EQUIVALENT.read_text())["mutants"] if EQUIVALENT.exists() else {}
    results = read_results(ROOT / "mutants")
    if not results:
        sys.exit("no mutation results under mutants/: run without --report-only first")
    stale = sorted(set(equivalent) - {n for statuses in results.values() for n in statuses})
    if stale:
        print("explanations for mutants that no longer exist:", ", ".join(stale), file=sys.stderr)
    rows, survivors = summarize(results, equivalent)
    overall = write_markdown(rows, survivors, equivalent, args.output)
    print(f"{overall:.1f}% of non-equivalent mutants killed; {len(survivors)} surviving; wrote {args.output}")


if __name__ == "__main__":
    main()
