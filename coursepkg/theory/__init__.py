"""The Jensen-Shannon chapter (``solutions/lab_js_divergence``).

Answer key: :mod:`~coursepkg.theory.divergences`. No imports here (see :mod:`coursepkg`).
"""
