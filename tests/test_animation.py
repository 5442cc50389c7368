"""coursepkg.toy2d.animation: self-contained HTML, frame counts and the size budget."""

import re

import matplotlib.pyplot as plt
import pytest
import torch

from coursepkg.toy2d import animation
from coursepkg.toy2d.data import sample_data
from coursepkg.toy2d.training import train
from coursepkg.toy2d.variants import StandardGAN
from coursepkg.toy2d.wgan import WGAN

EXTENT = (-1.6, 1.6, -1.4, 1.6)

pytestmark = pytest.mark.usefixtures("one_thread")


def _frames(html: str) -> int:
    return len(re.findall(r'frames\[\d+\] = "data:image/png;base64,', html))


def test_animate_embeds_every_frame_under_the_budget():
    fig, ax = plt.subplots()
    (line,) = ax.plot([0, 1], [0, 0])
    ax.set(title="t", xlabel="x", ylabel="y")
    result = animation.animate(fig, lambda i: line.set_ydata([0, i / 5]), 6)
    assert result.frames == 6 and _frames(result.html) == 6
    assert result.size_bytes < animation.MAX_BYTES and result._repr_html_() == result.html
    # Offline: no stylesheet, script or font from a CDN, and every button still labelled.
    assert not re.search(r'(href|src)="(https?:)?//', result.html) and 'class="fa' not in result.html
    assert result.html.count("<button") == 9 and "\u25b6</button>" in result.html
    assert not plt.get_fignums()  # closed: a notebook shows only the animation


def test_animate_refuses_to_exceed_its_budget():
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="budget is 1,000 bytes"):
        animation.animate(fig, lambda i: None, 2, max_bytes=1000)
    with pytest.raises(ValueError, match="at least 1 frame"):
        animation.animate(plt.figure(), lambda i: None, 0)


@pytest.fixture(scope="module")
def run_2d():
    torch.manual_seed(0)
    gan = StandardGAN(hidden=16)
    record = animation.recorder_2d(EXTENT, n_samples=50, resolution=20, latent_grid=5)
    return train(gan, lambda n: sample_data(n, "3gmm"), n_steps=8, batch_size=32, record=record, snapshots=4)


def test_2d_and_latent_animations(run_2d):
    data = sample_data(100, "3gmm", generator=torch.Generator().manual_seed(0))
    assert run_2d.snapshots[0]["scores"].shape == (20, 20) and run_2d.snapshots[0]["grid"].shape == (5, 5, 2)
    for result in (
        animation.animate_2d(run_2d, data, EXTENT, title="GAN"),
        animation.animate_latent_map(run_2d, data, EXTENT, title="Grid"),
    ):
        assert _frames(result.html) == 4 and result.size_bytes < 2_000_000
    with pytest.raises(ValueError, match="Unknown surface"):
        animation.animate_2d(run_2d, data, EXTENT, title="GAN", surface="logit")


def test_critic_surface_and_1d_animation():
    torch.manual_seed(0)
    wgan = WGAN(hidden=8)
    run = train(
        wgan,
        lambda n: sample_data(n, "3gmm"),
        n_steps=3,
        batch_size=16,
        record=animation.recorder_2d(EXTENT, n_samples=20, resolution=10),
        snapshots=2,
    )
    assert _frames(animation.animate_2d(run, sample_data(50, "3gmm"), EXTENT, title="W", surface="critic").html) == 2
    gan_1d = StandardGAN(dim=1, noise_dim=1, hidden=8)
    xs = torch.linspace(-3, 3, 31)
    run = train(
        gan_1d,
        lambda n: torch.randn(n, 1),
        n_steps=4,
        batch_size=16,
        record=animation.recorder_1d(xs, n_samples=200),
        snapshots=3,
    )
    assert run.snapshots[0]["d"].shape == (31,) and ((run.snapshots[0]["d"] >= 0) & (run.snapshots[0]["d"] <= 1)).all()
    assert _frames(animation.animate_1d(run, torch.randn(300), xs, title="1D").html) == 3
    with pytest.raises(ValueError, match="needs at least 2 snapshots holding 'scores'"):
        animation.animate_2d(run, sample_data(50, "3gmm"), EXTENT, title="1D run")
