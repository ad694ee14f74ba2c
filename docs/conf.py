"""Sphinx configuration for the sk_mnist documentation."""

import sk_mnist

project = "sk_mnist"
author = "sk_mnist developers"
copyright = "2026, sk_mnist developers"
release = version = sk_mnist.__version__

extensions = [
    "sphinx.ext.autodoc",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3

# Document what a class defines or inherits from scikit-learn; skorch's own
# machinery is reachable through skorch's documentation.
autodoc_default_options = {"members": False}
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
# scikit-learn's glossary terms (:term:`fit`) resolve to nothing here.
nitpicky = False
suppress_warnings = ["ref.term"]

html_theme = "alabaster"
html_title = f"sk_mnist {release}"
