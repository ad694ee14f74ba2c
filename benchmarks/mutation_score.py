"""Mutation score of the core modules: how many planted bugs the test suite catches.

Usage: python benchmarks/mutation_score.py [--max-children 2] [--report-only] [GROUP ...]

Runs mutmut once per group of modules, each against the tests written for those
modules (GROUPS below: a mutant is tested only by the group's tests that execute
the mutated function, fastest first, so a group's run costs what its own tests
cost), then writes docs/mutation.md: per module, the mutants generated, killed (a
test failed or crashed), explained (benchmarks/mutation_equivalent.toml: a
mutant no test can kill because the program behaves the same, or one mutmut
cannot test) and surviving, the score killed / (run - explained),
and every unexplained survivor with its changed line.

Each group runs in its own copy of the sources, ``build/mutation/GROUP/``, with
pyproject.toml's ``[tool.mutmut]`` narrowed to the group; results accumulate
there, and a later run retests only what changed. Not a CI job: the classifier
group alone takes hours on two cores. Needs ``pip install -e ".[mutation]"``.
"""

import argparse
import ast
import difflib
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import tomllib
from mutmut.stats import status_by_exit_code

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "mutation"
EQUIVALENT = ROOT / "benchmarks" / "mutation_equivalent.toml"
# A timeout is not counted as a kill: mutmut's limit comes from the tests' own
# durations, without their fixtures, so a slow surviving mutant can time out.
KILLED = {"killed", "segfault", "caught by type check"}

#: group: (modules mutated, the tests that exercise them directly). Integration
#: suites (estimator checks, meta-estimators, search, CLI, export) reach the same
#: code through many slow fits and are left out.
GROUPS = {
    "datasets": (
        ["sk_mnist/datasets/_idx.py", "sk_mnist/datasets/_mnist.py"],
        [
            "tests/test_idx.py",
            "tests/test_fuzz_idx.py",
            "tests/test_datasets.py",
            "tests/test_hostile_data.py",
            "tests/test_hostile_inputs.py",
        ],
    ),
    "stats": (["sk_mnist/report/_stats.py"], ["tests/test_report.py"]),
    "checkpoints": (
        ["sk_mnist/_checkpoint.py"],
        ["tests/test_checkpoint.py", "tests/test_hostile_checkpoints.py"],
    ),
    "preprocessing": (
        ["sk_mnist/preprocessing.py"],
        ["tests/test_preprocessing.py", "tests/test_hostile_inputs.py"],
    ),
    "persistence": (
        [
            "sk_mnist/persistence/_container.py",
            "sk_mnist/persistence/_tree.py",
            "sk_mnist/persistence/_io.py",
            "sk_mnist/persistence/_by_suffix.py",
        ],
        ["tests/test_persistence.py", "tests/test_hostile_model_files.py"],
    ),
    "classifier": (
        ["sk_mnist/_classifier.py", "sk_mnist/_training.py"],
        [
            "tests/test_classifier.py",
            "tests/test_training.py",
            "tests/test_sample_weight.py",
            "tests/test_incremental.py",
            "tests/test_checkpoint.py",
            "tests/test_weight_average.py",
            "tests/test_test_time_augmentation.py",
            "tests/test_hostile_inputs.py",
            # What the classifier hands to and takes back from a model file.
            "tests/test_persistence.py",
            "tests/test_hostile_model_files.py",
            # The one subclass that reads the images _targets is given.
            "tests/test_distill.py::test_unfitted_teacher_is_cloned_and_fitted",
            "tests/test_distill.py::test_first_partial_fit_fits_an_unfitted_teacher_on_its_samples",
        ],
    ),
}


def prepare(group):
    """The group's working copy, its ``[tool.mutmut]`` narrowed to the group."""
    modules, tests = GROUPS[group]
    work = WORK / group
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("sk_mnist", "tests"):
        # Afresh, so that deleted files go too; copies keep their times, which
        # is how mutmut tells an unchanged module from a changed one.
        shutil.rmtree(work / folder, ignore_errors=True)
        shutil.copytree(ROOT / folder, work / folder, ignore=ignore)
    pyproject = (ROOT / "pyproject.toml").read_text()
    config = tomllib.loads(pyproject)["tool"]["mutmut"]
    config.update(only_mutate=modules, pytest_add_cli_args_test_selection=tests, also_copy=[])
    section = "".join(f"{key} = {json.dumps(value)}\n" for key, value in config.items())
    before = pyproject[: pyproject.index("[tool.mutmut]")]
    (work / "pyproject.toml").write_text(before + "[tool.mutmut]\n" + section)
    return work


def explained():
    """``{mutant name: why no test can kill it}``, from benchmarks/mutation_equivalent.toml."""
    return tomllib.loads(EQUIVALENT.read_text())["mutants"] if EQUIVALENT.exists() else {}


def run_group(group, max_children):
    """Retest every survivor against today's tests, then test the group's new mutants.

    mutmut keeps a mutant's verdict until its function changes; a mutant named
    on the command line is tested again, which is how tests written since the
    last run get their chance at it. Survivors go first (but not those explained
    as equivalent), so that a run cut short has already given new tests their chance.
    """
    known = explained()
    survivors = [
        name
        for statuses in read_results(group).values()
        for name in not_killed(statuses)
        if name not in known
    ]
    work = prepare(group)
    command = ["mutmut", "run", "--max-children", str(max_children)]
    # One thread per test process: the children, not torch's threads, share the cores.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if survivors:
        print(f"== {group}: retesting {len(survivors)} survivors", flush=True)
        subprocess.run(command + survivors, cwd=work, env=env, check=True)
    print(f"== {group}: mutants not yet tested", flush=True)
    subprocess.run(command, cwd=work, env=env, check=True)


def read_results(group):
    """``{module: {mutant name: status}}`` from mutmut's records of the group's modules."""
    results = {}
    mutants_dir = WORK / group / "mutants"
    for module_path in GROUPS[group][0]:
        meta = mutants_dir / (module_path + ".meta")
        module = module_path.removesuffix(".py").replace("/", ".")
        if not meta.exists():
            results[module] = {}
            continue
        exit_codes = json.loads(meta.read_text())["exit_code_by_key"]
        results[module] = {name: status_by_exit_code[code] for name, code in exit_codes.items()}
    return results


def _functions(path):
    """``{function name: body lines}`` of a file mutmut has mutated."""
    # Parsed, not scanned by indentation: a docstring line may start in column 0.
    # The signature is kept (a default value can be mutated) without the name,
    # which differs between a mutant and its original.
    lines = path.read_text().splitlines()
    return {
        node.name: [lines[node.lineno - 1].replace(node.name, "f", 1), *lines[node.lineno : node.end_lineno]]
        for node in ast.walk(ast.parse("\n".join(lines)))
        if isinstance(node, ast.FunctionDef) and "__mutmut_" in node.name
    }


def changed_lines(group, survivors):
    """``{mutant name: its new line(s)}``, by comparing each mutant with its original."""
    functions = {}
    for module in {name.rsplit(".", 1)[0] for name in survivors}:
        functions.update(_functions(WORK / group / "mutants" / (module.replace(".", "/") + ".py")))
    changed = {}
    for name in survivors:
        function = name.rsplit(".", 1)[1]
        original = functions.get(function.rsplit("__mutmut_", 1)[0] + "__mutmut_orig", [])
        diff = difflib.unified_diff(original, functions.get(function, []), lineterm="", n=0)
        added = [line[1:].strip() for line in diff if line.startswith("+") and not line.startswith("+++")]
        changed[name] = " / ".join(added) or "(a line removed)"
    return changed


def not_killed(statuses):
    """The mutants that were run and that no test killed."""
    return [name for name, status in statuses.items() if status not in KILLED and status != "not checked"]


def summarize(results, equivalent):
    rows, survivors = [], []
    for (group, module), statuses in results.items():
        counts = Counter(statuses.values())
        killed = sum(counts[s] for s in KILLED)
        left = not_killed(statuses)
        live = [name for name in left if name not in equivalent]
        explained = len(left) - len(live)
        considered = len(statuses) - explained - counts["not checked"]
        score = 100 * killed / considered if considered else None
        rows.append((module, len(statuses), killed, explained, len(live), counts["not checked"], score))
        survivors += [(group, name, statuses[name]) for name in live]
    return rows, survivors


def write_markdown(rows, survivors, path):
    total = [sum(r[i] for r in rows) for i in range(1, 6)]
    considered = total[0] - total[2] - total[4]
    overall = 100 * total[1] / considered if considered else 100.0
    lines = [
        "# Mutation score",
        "",
        "How many small planted bugs (mutants: an operator flipped, a constant or a string",
        "changed, an argument dropped) the tests catch in the core modules. Written by",
        "`python benchmarks/mutation_score.py` (mutmut; common settings under",
        "`[tool.mutmut]` in pyproject.toml), which runs each group of modules against",
        "the tests written for it:",
        "",
        "| group | modules | tests |",
        "|---|---|---|",
        *(
            f"| {group} | {', '.join(f'`{m}`' for m in modules)} | {', '.join(f'`{t}`' for t in tests)} |"
            for group, (modules, tests) in GROUPS.items()
        ),
        "",
        "Score = killed / (run - explained). A mutant is killed when a test fails or",
        "crashes; a timeout is listed with the survivors, not counted as a kill (the",
        "limit ignores fixtures, so a slow survivor can time out). Explained mutants are",
        "equivalent ones, which change nothing a caller can see, and the few mutmut",
        "cannot test (code run at import, before a mutant is switched on); each has its",
        'reason in `benchmarks/mutation_equivalent.toml`. "Not run" counts mutants the',
        "runs so far have not reached, outside the score.",
        "",
        "| module | mutants | killed | explained | surviving | not run | score |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for module, n, killed, explained, live, unchecked, score in rows:
        if n == 0:  # the group has not been run: mutmut has not generated its mutants
            lines.append(f"| `{module}` | not generated | | | | | not run |")
            continue
        shown = "not run" if score is None else f"{score:.1f}%"
        lines.append(f"| `{module}` | {n} | {killed} | {explained} | {live} | {unchecked} | {shown} |")
    lines.append(
        f"| **all** | {total[0]} | {total[1]} | {total[2]} | {total[3]} | {total[4]} | **{overall:.1f}%** |"
    )
    if survivors:
        lines += ["", "## Surviving mutants", "", "| mutant | status | changed to |", "|---|---|---|"]
        changed = {}
        for group in {group for group, _, _ in survivors}:
            changed.update(changed_lines(group, [n for g, n, _ in survivors if g == group]))
        for group, name, status in survivors:
            new = changed[name].replace("|", "\\|")
            lines.append(f"| `{name}` | {status} | `{new}` |")
    path.write_text("\n".join(lines) + "\n")
    return overall


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", help=f"groups to run, of {', '.join(GROUPS)} (default: all)")
    parser.add_argument("--max-children", type=int, default=2, help="mutants tested at once")
    parser.add_argument("--report-only", action="store_true", help="write the page from the last results")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "mutation.md")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.groups) - set(GROUPS))
    if unknown:
        parser.error(f"unknown groups {unknown}; choose from {', '.join(GROUPS)}")

    if not args.report_only:
        for group in args.groups or GROUPS:
            run_group(group, args.max_children)
    equivalent = explained()
    results = {
        (group, module): statuses for group in GROUPS for module, statuses in read_results(group).items()
    }
    run = {module for (_, module), statuses in results.items() if statuses}
    known = {name for statuses in results.values() for name in statuses}
    stale = sorted(n for n in equivalent if n not in known and n.rsplit(".", 1)[0] in run)
    if stale:
        print("explanations for mutants that no longer exist:", ", ".join(stale), file=sys.stderr)
    rows, survivors = summarize(results, equivalent)
    overall = write_markdown(rows, survivors, args.output)
    print(f"score {overall:.1f}%; {len(survivors)} mutants surviving; wrote {args.output}")


if __name__ == "__main__":
    main()
