"""coursepkg.toy2d.variants, wgan, infogan and training: shapes, loss semantics, the loop."""

import math

import pytest
import torch

from coursepkg.toy2d.data import sample_data
from coursepkg.toy2d.infogan import InfoGAN
from coursepkg.toy2d.losses import discriminator_loss, generator_loss
from coursepkg.toy2d.training import snapshot_steps, train
from coursepkg.toy2d.variants import StandardGAN
from coursepkg.toy2d.wgan import WGAN

pytestmark = pytest.mark.usefixtures("one_thread")


def three_modes(n: int) -> torch.Tensor:
    return sample_data(n, "3gmm")


def test_standard_gan_losses_are_those_of_gan2d():
    torch.manual_seed(0)
    gan = StandardGAN(hidden=16)
    x, z = three_modes(32), gan.sample_latent(32)
    loss, logs = gan.discriminator_objective(x, z)
    expected = discriminator_loss(gan.discriminate(x), gan.discriminate(gan.generator(z)))
    assert loss.item() == pytest.approx(expected.item()) and logs == {"d_loss": loss.item()}
    loss, logs = gan.generator_objective(z)
    assert loss.item() == pytest.approx(generator_loss(gan.discriminate(gan.generator(z))).item())
    assert set(logs) == {"g_loss"}


def test_saturating_loss_is_log_one_minus_d():
    torch.manual_seed(0)
    gan = StandardGAN(hidden=16, saturating=True)
    z = gan.sample_latent(64)
    d = torch.sigmoid(gan.discriminate(gan.generator(z)))
    assert gan.generator_objective(z)[0].item() == pytest.approx(torch.log(1 - d).mean().item(), rel=1e-5)


def test_packed_discriminator_judges_packs_of_points():
    torch.manual_seed(0)
    gan = StandardGAN(hidden=16, pack=4)
    assert gan.discriminate(torch.randn(12, 2)).shape == (3, 1)
    assert gan.discriminator[0].in_features == 8
    with pytest.raises(ValueError, match="does not split into packs of 4"):
        gan.discriminate(torch.randn(10, 2))
    with pytest.raises(ValueError, match="pack must be a positive integer"):
        StandardGAN(pack=0)


def test_dropout_generator_is_random_in_training_and_deterministic_in_eval():
    torch.manual_seed(0)
    gan = StandardGAN(hidden=32, dropout=0.3)
    z = gan.sample_latent(50)
    gan.train()
    assert not torch.equal(gan.generator(z), gan.generator(z))
    gan.eval()
    assert torch.equal(gan.generator(z), gan.generator(z))
    assert sum(isinstance(m, torch.nn.Dropout) for m in gan.generator) == 3
    assert not any(isinstance(m, torch.nn.Dropout) for m in gan.discriminator)


def test_wgan_critic_loss_sign_and_clipping():
    torch.manual_seed(0)
    wgan = WGAN(hidden=16, clip=0.02)
    assert all(p.abs().max() <= 0.02 for p in wgan.discriminator.parameters())  # clipped from the start
    x, z = three_modes(64), wgan.sample_latent(64)
    loss, logs = wgan.discriminator_objective(x, z)
    expected = wgan.discriminate(wgan.generator(z)).mean() - wgan.discriminate(x).mean()
    assert loss.item() == pytest.approx(expected.item()) and logs["d_loss"] == loss.item()
    g_loss, _ = wgan.generator_objective(z)
    assert g_loss.item() == pytest.approx(-wgan.discriminate(wgan.generator(z)).mean().item())
    run = train(wgan, three_modes, n_steps=20, d_steps=5, batch_size=64, lr=5e-3, optimizer="rmsprop")
    assert all(p.abs().max() <= 0.02 + 1e-7 for p in wgan.discriminator.parameters())
    assert any(p.abs().max() > 0.0199 for p in wgan.discriminator.parameters())  # the bound is reached
    # The critic separates data from fakes: its loss (minus the distance estimate) ends negative.
    assert sum(run.history["d_loss"][-20:]) / 20 < 0


def test_infogan_latent_q_head_and_chance_cross_entropy():
    torch.manual_seed(0)
    info = InfoGAN(codes=6, hidden=16, noise_dim=2)
    z = info.sample_latent(40)
    assert z.shape == (40, 8) and torch.equal(z[:, 2:].sum(dim=1), torch.ones(40))
    assert info.generator(z).shape == (40, 2)
    assert info.code_logits(torch.randn(40, 2)).shape == (40, 6)
    assert (info.sample_latent(5, code=4)[:, 2:].argmax(dim=1) == 4).all()
    with pytest.raises(ValueError, match="code must be in"):
        info.sample_latent(5, code=6)
    # A Q head that outputs equal logits predicts every code with probability 1/c: CE = log c.
    torch.nn.init.zeros_(info.discriminator.q_head.weight)
    torch.nn.init.zeros_(info.discriminator.q_head.bias)
    _, logs = info.generator_objective(z)
    assert logs["info_loss"] == pytest.approx(math.log(6), rel=1e-6)
    _, logs = info.discriminator_objective(three_modes(40), z)
    assert logs["q_loss"] == pytest.approx(math.log(6), rel=1e-6)
    with pytest.raises(ValueError, match="codes >= 2"):
        InfoGAN(codes=1)


def test_infogan_mutual_information_term_decreases_in_training():
    torch.manual_seed(0)
    info = InfoGAN(codes=3, hidden=32, noise_dim=1)
    run = train(info, three_modes, n_steps=200, batch_size=64, lr=5e-3)
    losses = run.history["info_loss"]
    assert sum(losses[:10]) / 10 > 0.9  # about log 3 = 1.10 at the start
    assert sum(losses[-20:]) / 20 < 0.2  # the codes are recovered
    assert len(run.history["q_loss"]) == len(run.history["d_loss"]) == 200


def test_train_history_snapshots_and_determinism():
    def run_once():
        torch.manual_seed(3)
        gan = StandardGAN(hidden=16)
        run = train(
            gan,
            three_modes,
            n_steps=20,
            d_steps=2,
            batch_size=32,
            record=lambda model: model.sample(5, generator=torch.Generator().manual_seed(0)),
            snapshots=5,
        )
        return gan, run

    gan, run = run_once()
    assert len(run.history["d_loss"]) == 40 and len(run.history["g_loss"]) == 20
    assert run.steps == [0, 5, 10, 15, 20] and len(run.snapshots) == 5
    assert not torch.equal(run.snapshots[0], run.snapshots[-1]) and run.cpu_seconds > 0
    twin, twin_run = run_once()

    def seeded(model):
        return model.sample(5, generator=torch.Generator().manual_seed(1))

    assert twin_run.history == run.history and torch.equal(seeded(twin), seeded(gan))
    assert snapshot_steps(10, 3) == [0, 5, 10] and snapshot_steps(2, 10) == [0, 1, 2]


def test_lr_decay_reaches_zero_and_bad_arguments_raise():
    torch.manual_seed(0)
    gan = StandardGAN(hidden=8)
    before = [p.clone() for p in gan.generator.parameters()]
    train(gan, three_modes, n_steps=1, batch_size=8, lr_decay=True)
    # With one step the only update uses the full rate, so the generator moved.
    assert any(not torch.equal(a, b) for a, b in zip(before, gan.generator.parameters()))
    with pytest.raises(ValueError, match="must be positive"):
        train(gan, three_modes, n_steps=0)
    with pytest.raises(ValueError, match="Unknown optimizer"):
        train(gan, three_modes, n_steps=1, optimizer="sgd")
    with pytest.raises(ValueError, match="at least 2 snapshots"):
        train(gan, three_modes, n_steps=1, record=lambda m: None, snapshots=1)
    with pytest.raises(ValueError, match="hidden must be a positive integer"):
        StandardGAN(hidden=0)
