"""Import an optional dependency, or say which extra of sk_mnist installs it."""

from importlib import import_module


def require(module, extra, purpose):
    """Import ``module``, or raise an ImportError naming the extra to install.

    Parameters
    ----------
    module : str
        Dotted module name, e.g. ``"matplotlib.figure"``.
    extra : str
        The extra of sk_mnist that installs it, e.g. ``"report"``.
    purpose : str
        What needs it, for the message, e.g. ``"sk_mnist.report"``.

    Returns
    -------
    module : module

    Examples
    --------
    >>> require("json", "report", "the report").__name__
    'json'
    >>> require("no_such_module", "export", "export")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ImportError: no_such_module is needed for export but is not installed; install it with: pip install ...
    """
    try:
        return import_module(module)
    except ImportError as exc:
        missing = exc.name or module.split(".")[0]
        install = f'pip install "sk_mnist[{extra}]"'
        message = f"{missing} is needed for {purpose} but is not installed; install it with: {install}"
        raise ImportError(message) from exc
