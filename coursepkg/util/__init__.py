"""Helpers every part uses: torch threads, atomic files, command-line argument types, provenance.

No imports here (see :mod:`coursepkg`).
"""
