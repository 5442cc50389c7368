"""Reference implementations, figures and grading tools of the GAN course.

One subpackage per part of the book (the README's chapter table says the same):

=================  ==============================================================
``toy2d``          The GAN recap and the 2D GAN lab: 2D data, the lab's GAN and
                   losses (answer keys), MMD, variants (WGAN, InfoGAN), training,
                   mode coverage, animations, the mode-coverage benchmark.
``theory``         The Jensen-Shannon chapter: divergences (answer key).
``mnist``          The MNIST GAN lab: data, models (answer key), LeNet-5, metrics,
                   training, the shipped models, export, benchmark, figures.
``lsi``            The LSI lab and chapter: measures and search (answer keys),
                   archives, figures, pooling, benchmark.
``grading``        The labs' checks and their isolated re-run under nbgrader.
``util``           Threads, atomic files, command-line argument types, provenance.
=================  ==============================================================

No ``__init__`` imports anything: importing a helper must not load a lab's
answer key before the grader's isolated re-run can block it. Import modules by
their full path (``from coursepkg.toy2d.data import sample_data``). The command
line is ``python -m coursepkg`` (see :mod:`coursepkg.__main__`).
"""

__version__ = "0.1.0"
