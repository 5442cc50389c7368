"""coursepkg.toy2d.gan: the reference GAN, its two steps and the training loop."""

import math

import pytest
import torch
from torch import nn

from coursepkg.toy2d import gan as gan2d
from coursepkg.toy2d import losses as gan_losses
from coursepkg.toy2d.data import mixture_means, mixture_std, sample_data


@pytest.fixture
def gan() -> gan2d.GAN:
    torch.manual_seed(0)
    return gan2d.GAN(dim=2, h=16, latent_dim=3)


def _flat(module: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()]).clone()


def test_shapes_logits_and_sampling(gan):
    assert gan.generator(torch.randn(5, 3)).shape == (5, 2)
    logits = gan.discriminate(100 * torch.randn(64, 2))
    assert logits.shape == (64, 1)
    assert ((logits < 0) | (logits > 1)).any()  # logits, not probabilities
    samples = gan.sample(7)
    assert samples.shape == (7, 2) and not samples.requires_grad
    g = torch.Generator().manual_seed(1)
    assert torch.equal(gan.sample(4, generator=g), gan.sample(4, generator=torch.Generator().manual_seed(1)))
    assert gan.sample_latent(1000).std().item() == pytest.approx(1.0, abs=0.1)


def test_invalid_sizes_raise():
    with pytest.raises(ValueError, match="latent_dim must be a positive integer"):
        gan2d.GAN(2, 8, 0)
    with pytest.raises(ValueError, match="depth must be at least 1"):
        gan2d.mlp(2, 8, 1, depth=0)
    with pytest.raises(ValueError, match="must be positive"):
        gan2d.train_gan(gan2d.GAN(), lambda n: torch.zeros(n, 2), n_steps=0)


def test_losses_are_the_bce_formulas():
    real, fake = torch.tensor([[2.0], [-1.0]]), torch.tensor([[0.5], [-3.0]])
    sigmoid = torch.sigmoid
    expected_d = -(sigmoid(real).log().mean() + (1 - sigmoid(fake)).log().mean())
    assert gan_losses.discriminator_loss(real, fake).item() == pytest.approx(expected_d.item(), rel=1e-6)
    assert gan_losses.generator_loss(fake).item() == pytest.approx(-sigmoid(fake).log().mean().item(), rel=1e-6)


def test_discriminator_step_trains_only_the_discriminator_from_zeroed_gradients(gan):
    x_real, z = sample_data(32, "2gmm"), torch.randn(32, 3)
    optimizer = torch.optim.SGD(gan.discriminator.parameters(), lr=0.1)
    for p in gan.discriminator.parameters():
        p.grad = torch.ones_like(p)  # stale gradients from a generator step
    d_before, g_before = _flat(gan.discriminator), _flat(gan.generator)
    expected = gan_losses.discriminator_loss(gan.discriminate(x_real), gan.discriminate(gan.generator(z))).item()
    loss = gan2d.discriminator_step(gan, x_real, z, optimizer)
    assert isinstance(loss, float) and loss == pytest.approx(expected)
    assert all(p.grad is None for p in gan.generator.parameters())  # the fakes were detached
    assert torch.equal(_flat(gan.generator), g_before)
    # SGD moved D by exactly lr * (fresh gradient): recompute that gradient.
    torch.manual_seed(0)
    twin = gan2d.GAN(dim=2, h=16, latent_dim=3)
    gan_losses.discriminator_loss(twin.discriminate(x_real), twin.discriminate(twin.generator(z).detach())).backward()
    fresh = torch.cat([p.grad.flatten() for p in twin.discriminator.parameters()])
    assert torch.allclose(_flat(gan.discriminator), d_before - 0.1 * fresh, atol=1e-6)


def test_generator_step_trains_only_the_generator(gan):
    z = torch.randn(32, 3)
    optimizer = torch.optim.SGD(gan.generator.parameters(), lr=0.1)
    d_before, g_before = _flat(gan.discriminator), _flat(gan.generator)
    expected = gan_losses.generator_loss(gan.discriminate(gan.generator(z))).item()
    assert gan2d.generator_step(gan, z, optimizer) == pytest.approx(expected)
    assert torch.equal(_flat(gan.discriminator), d_before)
    assert not torch.equal(_flat(gan.generator), g_before)


def test_train_gan_history_and_progress_bar(gan, capsys):
    history = gan2d.train_gan(gan, lambda n: sample_data(n, "2gmm"), n_steps=5, d_steps=3, batch_size=8)
    assert set(history) == {"d_loss", "g_loss"}
    assert len(history["d_loss"]) == 15 and len(history["g_loss"]) == 5
    assert all(math.isfinite(v) for v in history["d_loss"] + history["g_loss"])
    assert "training: 100%" in capsys.readouterr().err
    gan2d.train_gan(gan, lambda n: sample_data(n, "2gmm"), n_steps=2, progress=False)
    assert capsys.readouterr().err == ""


def test_training_covers_all_eight_modes_of_radial_gmm():
    torch.manual_seed(0)
    gan = gan2d.GAN(dim=2, h=64, latent_dim=2)
    gan2d.train_gan(gan, lambda n: sample_data(n, "radial_gmm"), n_steps=1500, progress=False)
    samples = gan.sample(2000, generator=torch.Generator().manual_seed(0))
    distance, mode = torch.cdist(samples, mixture_means("radial_gmm")).min(dim=1)
    near = distance < 3 * mixture_std("radial_gmm")
    assert near.float().mean() > 0.75
    counts = torch.bincount(mode[near], minlength=8)
    assert (counts > 2000 / 8 / 4).all(), f"modes under-covered: {counts.tolist()}"
