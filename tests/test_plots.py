"""coursepkg.toy2d.plots: each helper returns a titled, labelled figure that saves to PNG."""

import pytest
import torch
from matplotlib.figure import Figure

from coursepkg.toy2d import gan as gan2d
from coursepkg.toy2d import plots
from coursepkg.toy2d.data import sample_data


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    gan = gan2d.GAN(dim=2, h=32, latent_dim=2)
    history = gan2d.train_gan(gan, lambda n: sample_data(n, "2gmm"), n_steps=60, d_steps=2, progress=False)
    return gan, history, sample_data(500, "2gmm", generator=torch.Generator().manual_seed(0))


def _saved(fig: Figure, tmp_path) -> int:
    path = tmp_path / "figure.png"
    fig.savefig(path)
    return path.stat().st_size


def test_plot_samples(trained, tmp_path):
    gan, _, data = trained
    fig = plots.plot_samples(data, gan.sample(300), title="Samples")
    ax = fig.axes[0]
    assert ax.get_title() == "Samples" and ax.get_xlabel() and ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["data", "generator"]
    assert len(ax.collections) == 2
    assert _saved(fig, tmp_path) > 10_000
    assert len(plots.plot_samples(data.numpy()).axes[0].collections) == 1


def test_plot_decision_surface(trained, tmp_path):
    gan, _, data = trained
    fig = plots.plot_decision_surface(gan.discriminate, data, gan.sample(300), title="Critic")
    ax = fig.axes[0]
    assert ax.get_title() == "Critic"
    image = ax.get_images()[0]
    assert image.get_array().min() >= 0 and image.get_array().max() <= 1  # probabilities
    assert "D(x)" in fig.axes[1].get_ylabel()  # the colour bar says what it shows
    assert _saved(fig, tmp_path) > 10_000


def test_plot_losses(trained, tmp_path):
    _, history, _ = trained
    fig = plots.plot_losses(history, title="Losses", smoothing=10)
    ax = fig.axes[0]
    assert ax.get_title() == "Losses" and ax.get_xlabel() == "generator step"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["discriminator (moving average)", "generator (moving average)"]
    assert _saved(fig, tmp_path) > 10_000


def test_bad_inputs_raise_clear_errors(trained):
    gan, _, data = trained
    with pytest.raises(ValueError, match=r"data must be an \(n, 2\) array"):
        plots.plot_samples(torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"samples must be an \(n, 2\) array"):
        plots.plot_decision_surface(gan.discriminate, data, torch.zeros(5))
    with pytest.raises(ValueError, match="k discriminator losses per generator loss"):
        plots.plot_losses({"d_loss": [1.0, 2.0, 3.0], "g_loss": [1.0, 2.0]})


def test_plot_gan_game_draws_a_titled_diagram_of_the_game(tmp_path):
    fig = plots.plot_gan_game()
    ax = fig.axes[0]
    assert ax.get_title() == "The GAN game" and not ax.axison
    texts = " ".join(t.get_text() for t in ax.texts)
    for part in ("noise", "real data", "generator $G$", "discriminator $D$", "G's loss", "D's loss", "update $D$"):
        assert part in texts
    # Portrait, for a phone; big type; the boxes inside the figure.
    width, height = fig.get_size_inches()
    assert height > width and min(t.get_fontsize() for t in ax.texts) >= 12
    fig.canvas.draw()
    box = fig.get_window_extent()
    for text in ax.texts:
        extent = text.get_window_extent()
        assert extent.x0 >= box.x0 and extent.x1 <= box.x1 and extent.y0 >= box.y0 and extent.y1 <= box.y1
    assert _saved(fig, tmp_path) > 20_000
