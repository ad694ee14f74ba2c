"""``python -m sk_mnist``: the ``sk-mnist`` command."""

from .cli import main

if __name__ == "__main__":  # not when imported, e.g. by pytest's doctest collection
    raise SystemExit(main())
