"""Distillation on the full protocol: a small student with and without a teacher.

Usage: python benchmarks/bench_distill.py [--random-state 0] [--teacher-architecture deep]
       [--teacher-file PATH] [--student small] [--param NAME=VALUE ...]

Fits the teacher (DistilledCNNClassifier's default teacher, ``TEACHER_PARAMS``,
with ``--teacher-architecture``) on the 60,000 training images, then the
student twice with the same recipe and budget: once distilled from the teacher
(DistilledCNNClassifier), once on the labels alone
(MNISTCNNClassifier(architecture=student), with the recipe's label smoothing).
``--param`` sets a parameter of both students, e.g. ``--param
module__hidden_units=100`` (values are Python literals or torch optimizers such
as ``torch.optim.AdamW``). With ``--teacher-file``, the teacher is loaded from
that file (sk_mnist.save's format) when it exists, and saved there after
fitting when it does not, so that students can be compared without refitting
it; the file may hold an ensemble of CNNs (``make_cnn_ensemble``'s
VotingClassifier). Prints parameters, epochs, fit time and test accuracy of all
three.
"""

import argparse
import time
from pathlib import Path

import torch
from _params import add_param_option

import sk_mnist
from sk_mnist import DistilledCNNClassifier, MNISTCNNClassifier, load_mnist
from sk_mnist.distill import TEACHER_PARAMS


def n_parameters(clf):
    members = getattr(clf, "estimators_", [clf])  # a teacher may be an ensemble
    return sum(p.numel() for member in members for p in member.module_.parameters())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--teacher-architecture", default=TEACHER_PARAMS["architecture"])
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--alpha", type=float, default=0.7)
    parser.add_argument("--teacher-file", type=Path, default=None)
    parser.add_argument("--student", default="small")
    add_param_option(parser, "a parameter of both students")
    args = parser.parse_args()
    student_params = dict(args.param)
    X, y = load_mnist("train", return_X_y=True)
    X_test, y_test = load_mnist("test", return_X_y=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    rows = []

    def run(name, clf):
        start = time.perf_counter()
        clf.fit(X, y)
        rows.append(
            (name, n_parameters(clf), clf.n_iter_, time.perf_counter() - start, clf.score(X_test, y_test))
        )
        print(rows[-1], flush=True)
        return clf

    seed = args.random_state
    if args.teacher_file is not None and args.teacher_file.exists():
        teacher = sk_mnist.load(args.teacher_file)
        rows.append(
            (
                "teacher (loaded)",
                n_parameters(teacher),
                getattr(teacher, "n_iter_", "–"),
                0.0,
                teacher.score(X_test, y_test),
            )
        )
        print(rows[-1], flush=True)
    else:
        teacher = run(
            "teacher",
            MNISTCNNClassifier(
                **{**TEACHER_PARAMS, "architecture": args.teacher_architecture}, random_state=seed
            ),
        )
        if args.teacher_file is not None:
            sk_mnist.save(teacher, args.teacher_file)
    student = {"student": args.student, "random_state": seed, **student_params}
    run(
        "student, distilled",
        DistilledCNNClassifier(teacher, temperature=args.temperature, alpha=args.alpha, **student),
    )
    # The same network; label smoothing stays the recipe's own.
    student["architecture"] = student.pop("student")
    run("student, labels only", MNISTCNNClassifier(**student))

    print()
    print("| model | parameters | vs teacher | epochs | fit time | test accuracy |")
    print("|---|---|---|---|---|---|")
    for name, params, epochs, seconds, accuracy in rows:
        change = params / rows[0][1] - 1
        print(f"| {name} | {params:,} | {change:+.0%} | {epochs} | {seconds:.0f} s | {accuracy:.2%} |")


if __name__ == "__main__":
    main()
