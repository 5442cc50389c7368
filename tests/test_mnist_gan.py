"""The MNIST GAN reference, its training loop (checkpoints, resume, budget) and LeNet-5."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from coursepkg.mnist import lenet as lenet_module
from coursepkg.mnist import models as mnist_models
from coursepkg.mnist.averaging import ema_with_warmup
from coursepkg.mnist.train import RECIPES, GANRecipe, train_gan, train_lenet
from coursepkg.toy2d import losses as gan_losses

TINY = GANRecipe(g_hidden=(16, 32), d_hidden=(32, 16), latent_dim=8, batch_size=16, ema=None)
TINY_EMA = replace(TINY, ema=0.99, d_lr=4e-4)


def _images(n: int, seed: int = 0) -> torch.Tensor:
    return 2 * torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) - 1


def test_networks_have_the_shapes_of_the_lsi_tutorial():
    generator, discriminator = mnist_models.Generator(), mnist_models.Discriminator()
    g_shapes = [(m.in_features, m.out_features) for m in generator.modules() if isinstance(m, nn.Linear)]
    d_shapes = [(m.in_features, m.out_features) for m in discriminator.modules() if isinstance(m, nn.Linear)]
    assert g_shapes == [(128, 256), (256, 512), (512, 1024), (1024, 784)]
    assert d_shapes == [(784, 1024), (1024, 512), (512, 256), (256, 1)]
    assert [m.p for m in discriminator.modules() if isinstance(m, nn.Dropout)] == [0.3] * 3
    z = 30 * torch.randn(64, 128)
    images = generator(z)
    assert images.shape == (64, 784) and images.abs().max() <= 1
    discriminator.eval()
    assert discriminator(images).shape == (64, 1)
    assert torch.equal(discriminator(images), discriminator(images.reshape(-1, 1, 28, 28)))


def test_spectral_norm_folds_into_plain_weights_with_the_same_outputs():
    torch.manual_seed(0)
    discriminator = mnist_models.Discriminator(spectral_norm=True)
    discriminator.train()
    for _ in range(3):  # power iterations estimate the top singular value
        discriminator(_images(8))
    discriminator.eval()
    x = _images(8, seed=1)
    before = discriminator(x)
    largest = torch.linalg.matrix_norm(discriminator.net[0].weight.detach(), ord=2)
    assert largest == pytest.approx(1.0, rel=0.05)
    discriminator.remove_spectral_norm()
    assert not any(nn.utils.parametrize.is_parametrized(m) for m in discriminator.modules())
    assert torch.allclose(discriminator(x), before, atol=1e-6)
    plain = mnist_models.Discriminator()
    plain.load_state_dict(discriminator.state_dict())  # loads into the plain architecture the course ships


def test_train_step_updates_each_network_once_without_leaking_gradients():
    torch.manual_seed(0)
    generator, discriminator = mnist_models.Generator(8, (16,)), mnist_models.Discriminator((16,), dropout=0.0)
    d_opt = torch.optim.SGD(discriminator.parameters(), lr=0.1)
    g_opt = torch.optim.SGD(generator.parameters(), lr=0.1)
    g_before = [p.detach().clone() for p in generator.parameters()]
    d_before = [p.detach().clone() for p in discriminator.parameters()]
    x_real, z = _images(10).flatten(1), torch.randn(10, 8)
    with torch.no_grad():
        expected_d = gan_losses.discriminator_loss(discriminator(x_real), discriminator(generator(z))).item()
    d_loss, g_loss = mnist_models.train_step(generator, discriminator, x_real, z, d_opt, g_opt)
    assert d_loss == pytest.approx(expected_d, rel=1e-5)
    assert isinstance(g_loss, float) and g_loss > 0
    assert all(not torch.equal(a, b) for a, b in zip(g_before, generator.parameters(), strict=True))
    assert all(not torch.equal(a, b) for a, b in zip(d_before, discriminator.parameters(), strict=True))


@pytest.mark.parametrize("recipe", [TINY, TINY_EMA], ids=["last weights", "averaged generator"])
def test_a_resumed_run_continues_exactly_like_an_uninterrupted_one(tmp_path, recipe):
    images = _images(64)
    straight = train_gan(images, recipe=recipe, epochs=3, seed=5, progress=False)
    train_gan(images, recipe=recipe, epochs=2, seed=5, out_dir=tmp_path, progress=False)
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    resumed = train_gan(images, recipe=recipe, epochs=3, seed=5, out_dir=tmp_path, resume=True, progress=False)
    assert resumed.epochs == 3 and resumed.images_seen == straight.images_seen == 3 * 4 * 16
    assert resumed.history == straight.history
    for a, b in zip(straight.gan.state_dict().values(), resumed.gan.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert not list(tmp_path.glob("*.partial"))


def test_weight_averaging_changes_only_the_generator_that_is_returned():
    images = _images(64)
    plain = train_gan(images, recipe=replace(TINY, d_lr=4e-4), epochs=2, seed=3, progress=False)
    averaged = train_gan(images, recipe=TINY_EMA, epochs=2, seed=3, progress=False)
    assert plain.history == averaged.history  # the same game was played...
    for a, b in zip(plain.gan.discriminator.parameters(), averaged.gan.discriminator.parameters(), strict=True):
        assert torch.equal(a, b)
    # ...but the generator returned is the average of its weights, not the last ones.
    assert not torch.equal(plain.gan.generator.net[0].weight, averaged.gan.generator.net[0].weight)


def test_the_average_forgets_the_initial_weights_within_a_few_steps():
    layer = nn.Linear(1, 1, bias=False)
    average = AveragedModel(layer, multi_avg_fn=ema_with_warmup(0.999))
    with torch.no_grad():
        layer.weight.fill_(0.0)
        average.update_parameters(layer)  # the first update copies
        layer.weight.fill_(1.0)
        average.update_parameters(layer)  # decay min(0.999, 2 / 11): mostly the new weights
    assert average.module.weight.item() == pytest.approx(1 - 2 / 11)
    for _ in range(200):
        average.update_parameters(layer)
    assert average.module.weight.item() == pytest.approx(1.0, abs=1e-3)


def test_resuming_needs_a_matching_checkpoint(tmp_path):
    images = _images(32)
    with pytest.raises(FileNotFoundError, match="Start without --resume"):
        train_gan(images, recipe=TINY, epochs=1, out_dir=tmp_path, resume=True, progress=False)
    train_gan(images, recipe=TINY, epochs=1, seed=0, out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="another recipe or seed"):
        train_gan(images, recipe=TINY, epochs=2, seed=1, out_dir=tmp_path, resume=True, progress=False)


def test_a_cpu_budget_stops_training_early():
    result = train_gan(_images(4096), recipe=TINY, epochs=None, cpu_budget_s=0.2, progress=False)
    assert 0 < result.images_seen < 4096 and result.epochs == 0
    assert result.cpu_seconds >= 0.2


def test_snapshots_keep_the_sampled_generator_as_it_was_at_each_cpu_time():
    result = train_gan(
        _images(4096), recipe=TINY_EMA, epochs=None, cpu_budget_s=0.6, snapshot_cpu_s=(0.3, 0.1), progress=False
    )
    assert sorted(result.snapshots) == [0.1, 0.3]
    early, late = result.snapshots[0.1], result.snapshots[0.3]
    assert 0.1 <= early.cpu_seconds < late.cpu_seconds <= result.cpu_seconds
    assert 0 < early.images_seen < late.images_seen < result.images_seen
    assert not early.generator.training and early.generator is not result.gan.generator
    # Copies, not views: training went on after each was taken.
    weights = [s.generator.net[0].weight for s in (early, late)] + [result.gan.generator.net[0].weight]
    assert not torch.equal(weights[0], weights[1]) and not torch.equal(weights[1], weights[2])


def test_the_recipes_differ_where_the_tutorial_differs():
    ours, peer = RECIPES["ours"], RECIPES["peer"]
    assert (ours.latent_dim, ours.g_hidden, ours.d_hidden) == (128, (256, 512, 1024), (1024, 512, 256))
    assert (peer.latent_dim, peer.lr, peer.betas, peer.batch_size, peer.ema) == (100, 1e-4, (0.9, 0.999), 32, None)
    assert (ours.lr, ours.betas, ours.batch_size, ours.ema) == (1e-3, (0.0, 0.99), 128, 0.999)
    assert not ours.spectral_norm and not peer.spectral_norm


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": None}, "stopping point"),
        ({"epochs": 0}, "at least 1"),
    ],
)
def test_bad_training_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        train_gan(_images(8), recipe=TINY, progress=False, **kwargs)
    with pytest.raises(ValueError, match=r"\(n, 1, 28, 28\)"):
        train_gan(torch.zeros(8, 784), recipe=TINY, epochs=1, progress=False)


def test_lenet5_shapes_and_augmentation():
    model = lenet_module.LeNet5()
    x = torch.randn(5, 1, 28, 28)
    assert model(x).shape == (5, 10)
    assert torch.allclose(model(x).exp().sum(dim=1), torch.ones(5))
    assert model.features(x).shape == (5, lenet_module.FEATURE_DIM) and (model.features(x) >= 0).all()
    background = -0.1307 / 0.3081
    blank = torch.full((4, 1, 28, 28), background)
    assert torch.allclose(lenet_module.augment(blank), blank, atol=1e-5)  # borders filled with background
    digit = blank.clone()
    digit[:, :, 10:18, 12:16] = 2.8
    moved = lenet_module.augment(digit, generator=torch.Generator().manual_seed(0))
    assert moved.shape == digit.shape and not torch.allclose(moved, digit)


def test_lenet_training_learns_and_resumes(tmp_path):
    labels = torch.arange(512) % 2
    images = torch.full((512, 1, 28, 28), -0.42)
    images[labels == 1, :, 8:20, 12:16] = 2.8  # a vertical bar: class 1
    _, history = train_lenet(images, labels, epochs=2, seed=0, out_dir=tmp_path, progress=False)
    model, resumed = train_lenet(images, labels, epochs=5, seed=0, out_dir=tmp_path, resume=True, progress=False)
    assert len(resumed["loss"]) == 5 and resumed["loss"][:2] == history["loss"]
    assert resumed["loss"][-1] < resumed["loss"][0]
    with torch.no_grad():
        assert (model(images).argmax(dim=1) == labels).float().mean() > 0.95
