"""The probe half of each lab's checks: what the autograder's sandbox runs on a student's code.

One module per lab, named like its grader (``coursepkg.grading.probes.lab_2d_gan``). None
imports an answer key or a judge; see :mod:`coursepkg.grading.observe`.
"""
