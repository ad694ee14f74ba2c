"""Validate the docstrings of the public API with numpydoc.

Modelled on scikit-learn's ``sklearn/tests/test_docstrings.py``. The public
API is found, not listed: every public module of the package (no leading
underscore anywhere in its dotted name), every class and function named in
its ``__all__``, and the public methods and properties each such class
defines itself. Each object is validated by numpydoc, and the test fails
with every finding that scikit-learn's filter keeps:

- RT02 (a Returns entry may name the value), GL01 and GL02 (placement of
  the summary and of blank lines) are ignored everywhere;
- ES01 (extended summary), SA01 (See Also) and EX01 (Examples) are required
  of class docstrings only, not of methods and functions;
- PR02 and GL08 are ignored for properties, which have no parameters and
  may be documented in their class's Attributes.

A new public class, function or method therefore needs a docstring that
passes before it can be merged.
"""

import importlib
import inspect
import pkgutil

import pytest
from numpydoc.validate import validate

import sk_mnist

#: Ignored for every object (see the module docstring).
IGNORED_EVERYWHERE = {"RT02", "GL01", "GL02"}

#: Required of class docstrings only.
CLASS_ONLY = {"ES01", "SA01", "EX01"}

#: Ignored for properties.
IGNORED_FOR_PROPERTIES = {"PR02", "GL08"}


def _public_modules():
    """The package and its submodules whose dotted names have no private part."""
    names = [
        info.name
        for info in pkgutil.walk_packages(sk_mnist.__path__, prefix="sk_mnist.")
        if not any(part.startswith("_") for part in info.name.split("."))
    ]
    return [importlib.import_module(name) for name in ["sk_mnist", *sorted(names)]]


def _public_objects():
    """Map each public object's qualified name to ``(owner, method)``.

    ``owner`` is the class or function named in an ``__all__``; ``method`` is
    the name of a public method or property defined in that class, or None
    for the class or function itself. Objects exported by several modules
    are validated once, under the module that defines them.
    """
    objects = {}
    for module in _public_modules():
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            qualname = f"{obj.__module__}.{obj.__qualname__}"
            objects.setdefault(qualname, (obj, None))
            if not inspect.isclass(obj):
                continue
            for attribute, value in vars(obj).items():
                if attribute.startswith("_"):
                    continue
                if inspect.isfunction(value) or isinstance(value, property):
                    objects.setdefault(f"{qualname}.{attribute}", (obj, attribute))
    return dict(sorted(objects.items()))


def filter_errors(errors, owner, method):
    """The numpydoc findings that scikit-learn's filter keeps.

    Parameters
    ----------
    errors : list of (str, str)
        ``(code, message)`` pairs from :func:`numpydoc.validate.validate`.
    owner : class or function
        The object named in an ``__all__``.
    method : str or None
        The method or property of ``owner`` validated, or None for ``owner``
        itself.

    Yields
    ------
    code : str
        The numpydoc error code.
    message : str
        What it says.
    """
    is_class = inspect.isclass(owner) and method is None
    is_property = method is not None and isinstance(vars(owner)[method], property)
    for code, message in errors:
        if code in IGNORED_EVERYWHERE:
            continue
        if code in CLASS_ONLY and not is_class:
            continue
        if code in IGNORED_FOR_PROPERTIES and is_property:
            continue
        yield code, message


PUBLIC_OBJECTS = _public_objects()


def test_public_api_is_found():
    """The enumeration sees the main estimators and their methods."""
    for qualname in (
        "sk_mnist._classifier.MNISTCNNClassifier",
        "sk_mnist._classifier.MNISTCNNClassifier.fit",
        "sk_mnist.distill.DistilledCNNClassifier",
        "sk_mnist.datasets._mnist.load_mnist",
        "sk_mnist.report._stats.McNemarResult",
    ):
        assert qualname in PUBLIC_OBJECTS


@pytest.mark.parametrize("qualname", list(PUBLIC_OBJECTS))
def test_docstring(qualname):
    owner, method = PUBLIC_OBJECTS[qualname]
    result = validate(qualname)
    findings = list(filter_errors(result["errors"], owner, method))
    if findings:
        lines = [f"{qualname} ({result['file']}:{result['file_line']}):"]
        lines += [f"    {code}: {message}" for code, message in findings]
        raise AssertionError("\n".join(lines))
