"""The test extra is installed in full.

Test modules that need an optional dependency skip themselves when it is missing,
which is right for a user running one file; for the suite as a whole a missing
extra would quietly turn hundreds of tests into skips. This test fails instead,
naming what is missing.
"""

from importlib import metadata

from packaging.requirements import Requirement


def _requirements(extra, seen=None):
    """The requirements ``pip install sk_mnist[extra]`` installs, self-references expanded."""
    seen = set() if seen is None else seen
    seen.add(extra)
    found = []
    for line in metadata.requires("sk_mnist") or []:
        requirement = Requirement(line)
        if requirement.marker is None or not requirement.marker.evaluate({"extra": extra}):
            continue
        if requirement.name.replace("-", "_") == "sk_mnist":
            found += [r for e in sorted(requirement.extras - seen) for r in _requirements(e, seen)]
        else:
            found.append(requirement)
    return found


def _unmet(requirement):
    try:
        version = metadata.version(requirement.name)
    except metadata.PackageNotFoundError:
        return f"{requirement} (not installed)"
    if not requirement.specifier.contains(version, prereleases=True):
        return f"{requirement} (found {version})"
    return None


def test_the_test_extra_expands_to_every_optional_dependency_the_tests_use():
    names = {r.name.lower() for r in _requirements("test")}
    assert {"pytest", "hypothesis", "pandas", "onnxruntime", "safetensors", "distributed", "skops"} <= names


def test_every_requirement_of_the_test_extra_is_installed():
    unmet = [message for r in _requirements("test") if (message := _unmet(r))]
    assert not unmet, "install the test extra (pip install -e '.[test]'); missing: " + ", ".join(unmet)
