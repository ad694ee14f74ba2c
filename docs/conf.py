"""Sphinx configuration for the sk_mnist documentation."""

import sys
from pathlib import Path

import sk_mnist

sys.path.insert(0, str(Path(__file__).parent))  # for _gallery, the gallery's settings

project = "sk_mnist"
author = "sk_mnist developers"
copyright = "2026, sk_mnist developers"
release = version = sk_mnist.__version__

extensions = [
    "sphinx.ext.autodoc",
    "numpydoc",
    "myst_parser",
    "sphinx_copybutton",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]

# The examples, run with small settings, their output and figures in the docs.
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"\.py$",  # every example is run
    "reset_argv": "_gallery.reset_argv",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "abort_on_example_error": True,
}
myst_heading_anchors = 3

# Document what a class defines or inherits from scikit-learn; skorch's own
# machinery is reachable through skorch's documentation.
autodoc_default_options = {"members": False}
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
# scikit-learn's glossary terms (:term:`fit`) resolve to nothing here.
nitpicky = False
suppress_warnings = ["ref.term"]

# scikit-learn's theme; a copy button on every code block, prompts left out of the copy.
html_theme = "pydata_sphinx_theme"
html_title = f"sk_mnist {release}"
html_theme_options = {"navigation_with_keys": False}
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
