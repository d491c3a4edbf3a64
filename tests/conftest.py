"""Fixtures shared by every test folder; the helpers live in fsharness.py (importable by name)."""

from fsharness import make_server  # noqa: F401  (pytest fixture)
