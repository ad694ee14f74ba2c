"""Link each estimator's HTML repr to its entry in the published API reference."""

import sys
from importlib import metadata
from itertools import takewhile


def documentation_url():
    """The published documentation's address, from the installed package's metadata.

    Returns
    -------
    url : str or None
        The ``Documentation`` entry of ``[project.urls]``, ending in a
        slash, or None where the metadata names none (or the package is
        imported from a source tree that is not installed).
    """
    try:
        urls = metadata.metadata("sk_mnist").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        return None
    for entry in urls:
        label, _, url = entry.partition(",")
        if label.strip().lower() == "documentation" and url.strip():
            return url.strip().rstrip("/") + "/"
    return None


class DocLinkMixin:
    """Point the "?" of scikit-learn's HTML repr at this package's API reference.

    scikit-learn links an estimator's HTML repr to its documentation through
    two class attributes, ``_doc_link_module`` (the root module whose
    estimators are linked) and ``_doc_link_template``. The API reference
    documents each estimator under the name users import it by: from the
    package itself where it is exported there (``sk_mnist.MNISTCNNClassifier``),
    else from its public module (``sk_mnist.preprocessing.PixelScaler``), at
    the address of :func:`documentation_url`; without one, the repr has no link.
    """

    _doc_link_module = "sk_mnist"

    @property
    def _doc_link_template(self):
        url = documentation_url()
        return "" if url is None else url + "api.html#{estimator_module}.{estimator_name}"

    def _doc_link_url_param_generator(self):
        cls = type(self)
        package = sys.modules[__package__]  # imported before any of its modules
        if getattr(package, cls.__name__, None) is cls:
            module = package.__name__
        else:
            module = ".".join(takewhile(lambda part: not part.startswith("_"), cls.__module__.split(".")))
        return {"estimator_module": module, "estimator_name": cls.__name__}
