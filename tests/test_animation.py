"""coursepkg.toy2d.animation: an offline video whose poster is the last frame, frame counts and the size budget."""

import base64
import io
import re

import imageio_ffmpeg
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from coursepkg.toy2d import animation
from coursepkg.toy2d.data import sample_data
from coursepkg.toy2d.training import train
from coursepkg.toy2d.variants import StandardGAN
from coursepkg.toy2d.wgan import WGAN

EXTENT = (-1.6, 1.6, -1.4, 1.6)

pytestmark = pytest.mark.usefixtures("one_thread")


def _embedded(html: str, kind: str) -> bytes:
    """The bytes of the one data URI of MIME type ``kind`` in ``html``."""
    (payload,) = re.findall(rf'"data:{kind};base64,([A-Za-z0-9+/=]+)"', html)
    return base64.b64decode(payload)


def _video_frames(result: animation.Animation, tmp_path) -> list[np.ndarray]:
    """The video's frames, decoded: ``(height, width, 3)`` uint8 arrays."""
    path = tmp_path / "video.mp4"
    path.write_bytes(_embedded(result.html, "video/mp4"))
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = reader.__next__()
    width, height = meta["size"]
    return [np.frombuffer(frame, np.uint8).reshape(height, width, 3) for frame in reader]


def test_animate_makes_a_video_whose_poster_is_the_last_frame(tmp_path):
    fig, ax = plt.subplots(figsize=(3, 2), dpi=50)
    ax.set(title="t", xlabel="x", ylabel="y")
    # Frame i paints the axes from black (frame 0) to white (frame 5).
    result = animation.animate(fig, lambda i: ax.set_facecolor(str(i / 5)), 6, title="Grey <levels>")
    assert result.frames == 6 and (result.width, result.height) == (150, 100)
    assert result.size_bytes < animation.MAX_BYTES and result._repr_html_() == result.html
    assert result._repr_jpeg_() == result.poster == _embedded(result.html, "image/jpeg")
    # Offline, with the browser's controls, labelled (escaped), and a note under it.
    assert not re.search(r'(href|src)="(https?:)?//', result.html) and "<script" not in result.html
    assert re.search(r'<video controls[^>]* poster="data:image/jpeg;base64,', result.html)
    assert 'aria-label="Grey &lt;levels&gt;"' in result.html and "last frame" in result.html
    frames = _video_frames(result, tmp_path)
    assert len(frames) == 6 and frames[0].shape == (100, 150, 3)
    poster = plt.imread(io.BytesIO(result.poster), format="jpeg").astype(float)
    centre = (slice(40, 60), slice(60, 90))  # inside the axes

    def grey(image: np.ndarray) -> float:
        return float(np.asarray(image, dtype=float)[centre].mean())

    # What a reader sees first is where the animation ends, not where it starts.
    assert grey(poster) > 240 and abs(grey(frames[-1]) - grey(poster)) < 8 and grey(frames[0]) < 15
    assert not plt.get_fignums()  # closed: a notebook shows only the animation


def test_animate_refuses_to_exceed_its_budget():
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="budget is 1,000 bytes"):
        animation.animate(fig, lambda i: None, 2, title="t", max_bytes=1000)
    with pytest.raises(ValueError, match="at least 1 frame"):
        animation.animate(plt.figure(), lambda i: None, 0, title="t")


@pytest.fixture(scope="module")
def run_2d():
    torch.manual_seed(0)
    gan = StandardGAN(hidden=16)
    record = animation.recorder_2d(EXTENT, n_samples=50, resolution=20, latent_grid=5)
    return train(gan, lambda n: sample_data(n, "3gmm"), n_steps=8, batch_size=32, record=record, snapshots=4)


def test_2d_and_latent_animations(run_2d, tmp_path):
    data = sample_data(100, "3gmm", generator=torch.Generator().manual_seed(0))
    assert run_2d.snapshots[0]["scores"].shape == (20, 20) and run_2d.snapshots[0]["grid"].shape == (5, 5, 2)
    for result in (
        animation.animate_2d(run_2d, data, EXTENT, title="GAN"),
        animation.animate_latent_map(run_2d, data, EXTENT, title="Grid"),
    ):
        assert result.frames == 4 and len(_video_frames(result, tmp_path)) == 4
        # Portrait, so that a phone shows it large; the note names the last step.
        assert result.height > result.width and "step 8" in result.note
        assert result.size_bytes < animation.MAX_BYTES
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
    assert animation.animate_2d(run, sample_data(50, "3gmm"), EXTENT, title="W", surface="critic").frames == 2
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
    assert animation.animate_1d(run, torch.randn(300), xs, title="1D").frames == 3
    with pytest.raises(ValueError, match="needs at least 2 snapshots holding 'scores'"):
        animation.animate_2d(run, sample_data(50, "3gmm"), EXTENT, title="1D run")
