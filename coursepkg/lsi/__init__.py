"""The LSI lab (``solutions/lab_lsi``) and the LSI chapter (``book/lsi_mnist.ipynb``).

Answer keys of the LSI lab: :mod:`~coursepkg.lsi.measures` and :mod:`~coursepkg.lsi.search`.
No imports here (see :mod:`coursepkg`).
"""
