"""Authoring tools of the course, run from the repository root; not installed with ``coursepkg``.

* ``python -m tools.release``: the book's lab pages, their sync check and the student branch.
* ``python -m tools.sweep_mnist_recipes``: the candidate MNIST recipes the course's was chosen from.
* ``python -m tools.benchmark_autograde``: seconds per autograded submission, and what isolation costs.
"""
