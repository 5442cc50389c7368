"""Autograding support: checks that run in the notebook and again in isolation.

* :mod:`~coursepkg.grading.checks`: the probe/judge split of a check.
* :mod:`~coursepkg.grading.lab_2d_gan`: the checks of the 2D GAN lab.
* :mod:`~coursepkg.grading.isolation` and :mod:`~coursepkg.grading.probe`: the
  re-run of the checks outside the student's kernel.
* :mod:`~coursepkg.grading.nbgrader_plugin`: the nbgrader preprocessor that
  does that re-run during ``nbgrader autograde``.
"""
