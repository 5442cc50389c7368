"""The MNIST GAN lab (``solutions/lab_mnist_gan``), and the models the LSI part searches.

Answer keys of the MNIST lab: :mod:`~coursepkg.mnist.models` and the losses of
:mod:`coursepkg.toy2d.losses`. ``digits/`` holds the shipped MNIST digits and
``weights/`` the shipped models with their manifest. No imports here (see :mod:`coursepkg`).
"""
