"""The package's rooms import only the rooms below them, and nothing imports in a circle.

The contracts are in pyproject.toml (``[tool.importlinter]``) and the picture
in docs/architecture.md; import-linter checks the first against the real
imports, including those made inside functions.
"""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# import-linter's command line, in a child process: it configures itself and
# sys.path globally, which the test session must not inherit.
LINT = (
    "import sys; from importlinter.cli import lint_imports; "
    "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))"
)


def test_import_contracts_are_kept():
    result = subprocess.run([sys.executable, "-c", LINT], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 4 kept, 0 broken." in result.stdout


def test_persistence_leaves_skorch_to_the_classifier():
    # The model format encodes and decodes; the classifier hands out and takes
    # back its network's state itself (_get_network_state, _set_network_state),
    # so that a skorch upgrade touches one class, not the file format.
    source = "\n".join(path.read_text() for path in (ROOT / "sk_mnist" / "persistence").glob("*.py"))
    skorch_internals = [
        "_current_init_context",
        "initialize",
        "init_context_",
        "cuda_dependent_attributes_",
        "_criteria",
        "_optimizers",
        "_params_to_validate",
        "prefixes_",
        "module_.",
        "optimizer_.",
    ]
    assert [name for name in skorch_internals if re.search(rf"\b{re.escape(name)}", source)] == []
