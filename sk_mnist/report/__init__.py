"""Compare models on MNIST and write the comparison up as a report.

:func:`compare` fits and scores several models on one test set and measures
accuracy with its confidence interval, errors, fit and predict times, model
size and parameter count, per-class recall, confusion matrices and pairwise
McNemar tests. :func:`write_report` writes the result to a folder as
Markdown, self-contained HTML, versioned JSON and PNG figures, next to the
classic published MNIST results and this package's frontier recipe;
:func:`add_report_section` appends later results, such as a hyper-parameter
search, to it. The report's figures are
also displays in scikit-learn's style, for notebooks: :class:`ErrorMatrixDisplay`,
:class:`ConfusedPairsDisplay`, :class:`MisclassifiedDisplay`,
:class:`TrainingCurvesDisplay` and :class:`AccuracyTimeDisplay`.

Needs the ``report`` extra (pandas, matplotlib): ``pip install 'sk_mnist[report]'``.
"""

from ._classic import CLASSIC_RESULTS, ClassicResult, published_result
from ._compare import Comparison, compare, count_parameters, serialized_size
from ._displays import (
    AccuracyTimeDisplay,
    ConfusedPairsDisplay,
    ErrorMatrixDisplay,
    MisclassifiedDisplay,
    TrainingCurvesDisplay,
)
from ._progress import EpochProgress, with_epoch_progress, without_epoch_progress
from ._schema import RESULTS_SCHEMA, SCHEMA_VERSION
from ._stats import McNemarResult, mcnemar_test, proportion_interval
from ._writers import add_report_section, summary_rows, write_report

__all__ = [
    "CLASSIC_RESULTS",
    "RESULTS_SCHEMA",
    "SCHEMA_VERSION",
    "AccuracyTimeDisplay",
    "ClassicResult",
    "Comparison",
    "ConfusedPairsDisplay",
    "EpochProgress",
    "ErrorMatrixDisplay",
    "McNemarResult",
    "MisclassifiedDisplay",
    "TrainingCurvesDisplay",
    "add_report_section",
    "compare",
    "count_parameters",
    "mcnemar_test",
    "proportion_interval",
    "published_result",
    "serialized_size",
    "summary_rows",
    "with_epoch_progress",
    "without_epoch_progress",
    "write_report",
]
