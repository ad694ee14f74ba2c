"""Import the optional dependencies of the report with an error that says how to get them."""

from importlib import import_module


def require(module):
    """Import ``module``, or explain that the ``report`` extra provides it.

    Examples
    --------
    >>> require("json").__name__
    'json'
    """
    try:
        return import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise ImportError(
            f"sk_mnist.report needs {top}, which is not installed; install it with: "
            "pip install 'sk_mnist[report]'"
        ) from exc
