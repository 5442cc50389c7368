"""Reference implementations, figures and grading tools of the GAN course.

Modules are imported on demand (``from coursepkg import gan2d``), so that the
grader can hide the reference solutions from a student's code.
"""

__version__ = "0.1.0"
