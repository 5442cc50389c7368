"""The GAN recap chapter (``book/gan_recap.ipynb``) and the 2D GAN lab (``solutions/lab_2d_gan``).

Answer keys of the 2D lab: :mod:`~coursepkg.toy2d.gan`, :mod:`~coursepkg.toy2d.losses`
and :mod:`~coursepkg.toy2d.mmd`. No imports here (see :mod:`coursepkg`).
"""
