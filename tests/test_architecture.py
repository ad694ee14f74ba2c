"""The package's rooms import only the rooms below them, and nothing imports in a circle.

The contracts are in pyproject.toml (``[tool.importlinter]``) and the picture
in docs/architecture.md; import-linter checks the first against the real
imports, including those made inside functions.
"""

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
    assert "Contracts: 2 kept, 0 broken." in result.stdout
