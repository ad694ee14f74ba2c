"""The "?" of an estimator's HTML repr links to its entry in the API reference."""

import re
from email.message import Message
from pathlib import Path

import pytest
from test_estimator_checks import instance, public_estimators

import sk_mnist._docs
from sk_mnist import MNISTCNNClassifier
from sk_mnist.preprocessing import PixelScaler

API = Path(__file__).resolve().parent.parent / "docs" / "api.rst"


@pytest.fixture
def published(monkeypatch):
    monkeypatch.setattr(sk_mnist._docs, "documentation_url", lambda: "https://docs.example/sk_mnist/")


@pytest.mark.parametrize("cls", public_estimators(), ids=lambda cls: cls.__name__)
def test_every_estimator_links_to_the_name_the_api_reference_documents_it_by(published, cls):
    documented = set(re.findall(r"^\.\. autoclass:: ([\w.]+)", API.read_text(), re.MULTILINE))
    link = instance(cls)._get_doc_link()
    prefix = "https://docs.example/sk_mnist/api.html#"
    assert link.startswith(prefix) and link.removeprefix(prefix) in documented


def test_the_link_is_in_the_html_repr(published):
    assert 'href="https://docs.example/sk_mnist/api.html#sk_mnist.MNISTCNNClassifier"' in (
        MNISTCNNClassifier()._repr_html_()
    )
    assert PixelScaler()._get_doc_link().endswith("api.html#sk_mnist.preprocessing.PixelScaler")


def test_without_a_documentation_address_there_is_no_link(monkeypatch):
    monkeypatch.setattr(sk_mnist._docs, "documentation_url", lambda: None)
    assert MNISTCNNClassifier()._get_doc_link() == ""


def package_metadata(*urls):
    message = Message()
    for url in urls:
        message["Project-URL"] = url
    return message


@pytest.mark.parametrize(
    "urls, expected",
    [
        (
            ["Source, https://git.example/sk_mnist", "Documentation, https://docs.example/sk"],
            "https://docs.example/sk/",
        ),
        (["documentation , https://docs.example/sk/"], "https://docs.example/sk/"),
        (["Source, https://git.example/sk_mnist"], None),
        (["Documentation,"], None),
        ([], None),
    ],
)
def test_the_documentation_address_is_the_packages_project_url(monkeypatch, urls, expected):
    monkeypatch.setattr(sk_mnist._docs.metadata, "metadata", lambda name: package_metadata(*urls))
    assert sk_mnist._docs.documentation_url() == expected


def test_a_source_tree_that_is_not_installed_has_no_address(monkeypatch):
    def not_installed(name):
        raise sk_mnist._docs.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(sk_mnist._docs.metadata, "metadata", not_installed)
    assert sk_mnist._docs.documentation_url() is None
