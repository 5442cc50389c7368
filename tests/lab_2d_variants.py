"""Submissions to the 2D GAN lab: correct ones written unlike ours, and real mistakes.

Each variant maps solution cells (by nbgrader ``grade_id``) to the source a
student might put there. The grading tests run the checks on them in-process
and through nbgrader, and expect exactly the listed test cells to fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# ---------------------------------------------------------------- sources

GAN_RELU = """
class GAN(nn.Module):
    def __init__(self, dim, h, latent_dim):
        super().__init__()
        self.latent_dim = latent_dim
        self.generator = nn.Sequential(nn.Linear(latent_dim, 2 * h), nn.ReLU(), nn.Linear(2 * h, dim))
        self.discriminator = nn.Sequential(nn.Linear(dim, 2 * h), nn.ReLU(), nn.Linear(2 * h, 1))

    def discriminate(self, x):
        return self.discriminator(x)

    def sample(self, n):
        return self.generator(torch.randn(n, self.latent_dim)).detach()
"""


def _gan(final_d: str = "", final_g: str = "", noise: str = "torch.randn(n, self.latent_dim)") -> str:
    return f"""
class GAN(nn.Module):
    def __init__(self, dim, h, latent_dim):
        super().__init__()
        self.dim, self.latent_dim = dim, latent_dim
        self.generator = nn.Sequential(
            nn.Linear(latent_dim, h), nn.LeakyReLU(0.2), nn.Linear(h, h), nn.LeakyReLU(0.2), nn.Linear(h, dim){final_g}
        )
        self.discriminator = nn.Sequential(
            nn.Linear(dim, h), nn.LeakyReLU(0.2), nn.Linear(h, h), nn.LeakyReLU(0.2), nn.Linear(h, 1){final_d}
        )

    def discriminate(self, x):
        return self.discriminator(x)

    def sample(self, n):
        with torch.no_grad():
            return self.generator({noise})
"""


def _d_step(
    fake: str = "gan.generator(z).detach()", loss: str | None = None, zero: str = "optimizer.zero_grad()"
) -> str:
    loss = loss or (
        "bce(gan.discriminate(x_real), torch.ones(len(x_real), 1))"
        " + bce(gan.discriminate(x_fake), torch.zeros(len(x_fake), 1))"
    )
    return f"""
def discriminator_step(gan, x_real, z, optimizer):
    bce = nn.BCEWithLogitsLoss()
    x_fake = {fake}
    loss = {loss}
    {zero}
    loss.backward()
    optimizer.step()
    return loss.item()
"""


D_STEP_PROBABILITIES = """
def discriminator_step(gan, x_real, z, optimizer):
    with torch.no_grad():
        x_fake = gan.generator(z)
    p_real = torch.sigmoid(gan.discriminate(x_real))
    p_fake = torch.sigmoid(gan.discriminate(x_fake))
    loss = nn.BCELoss()(p_real, torch.ones_like(p_real)) + nn.BCELoss()(p_fake, torch.zeros_like(p_fake))
    gan.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss)
"""

D_STEP_CONCATENATED = """
def discriminator_step(gan, x_real, z, optimizer):
    optimizer.zero_grad()
    logits = gan.discriminate(torch.cat([x_real, gan.generator(z).detach()]))
    labels = torch.cat([torch.ones(len(x_real), 1), torch.zeros(len(z), 1)])
    loss = nn.functional.binary_cross_entropy_with_logits(logits, labels)
    loss.backward()
    optimizer.step()
    return loss.item()
"""


def _g_step(
    loss: str = "bce(logits, torch.ones_like(logits))",
    zero: str = "optimizer.zero_grad()",
    step: str = "optimizer.step()",
) -> str:
    return f"""
def generator_step(gan, z, optimizer):
    bce = nn.BCEWithLogitsLoss()
    logits = gan.discriminate(gan.generator(z))
    loss = {loss}
    {zero}
    loss.backward()
    {step}
    return loss.item()
"""


def _loop(
    optimizers: str | None = None, noise: str = "torch.randn(batch_size, gan.latent_dim)", inner: str = "range(d_steps)"
) -> str:
    optimizers = optimizers or (
        "d_opt = torch.optim.SGD(gan.discriminator.parameters(), lr=lr)\n"
        "    g_opt = torch.optim.SGD(gan.generator.parameters(), lr=lr)"
    )
    return f"""
def train_gan(gan, sampler, *, n_steps, d_steps, batch_size, lr):
    {optimizers}
    d_losses, g_losses = [], []
    step = 0
    while step < n_steps:
        for _ in {inner}:
            d_losses.append(discriminator_step(gan, sampler(batch_size), {noise}, d_opt))
        g_losses.append(generator_step(gan, {noise}, g_opt))
        step += 1
    return {{"g_loss": g_losses, "d_loss": d_losses}}
"""


LOOP_FIXED_NOISE = """
def train_gan(gan, sampler, *, n_steps, d_steps, batch_size, lr):
    d_opt = torch.optim.Adam(gan.discriminator.parameters(), lr=lr)
    g_opt = torch.optim.Adam(gan.generator.parameters(), lr=lr)
    z = torch.randn(batch_size, gan.latent_dim)
    history = {"d_loss": [], "g_loss": []}
    for _ in range(n_steps):
        for _ in range(d_steps):
            history["d_loss"].append(discriminator_step(gan, sampler(batch_size), z, d_opt))
        history["g_loss"].append(generator_step(gan, z, g_opt))
    return history
"""

MMD_BROADCAST = """
def mmd2(x, y, *, bandwidth=0.5):
    def k(a, b):
        squared = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return torch.exp(-squared / (2 * bandwidth ** 2))
    x, y = x.double(), y.double()
    return float(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())
"""

MMD_UNBIASED = """
def mmd2(x, y, *, bandwidth=0.5):
    k = lambda a, b: torch.exp(-torch.cdist(a, b) ** 2 / (2 * bandwidth ** 2))
    n, m = len(x), len(y)
    kxx = (k(x, x).sum() - n) / (n * (n - 1))
    kyy = (k(y, y).sum() - m) / (m * (m - 1))
    return (kxx + kyy - 2 * k(x, y).mean()).item()
"""

MMD_NO_FACTOR_2 = """
def mmd2(x, y, *, bandwidth=0.5):
    k = lambda a, b: torch.exp(-torch.cdist(a, b) ** 2 / (2 * bandwidth ** 2)).mean()
    return (k(x, x) + k(y, y) - k(x, y)).item()
"""

WRAPS_REFERENCE = """
from coursepkg.toy2d.gan import discriminator_step as _reference_step


def discriminator_step(gan, x_real, z, optimizer):
    return _reference_step(gan, x_real, z, optimizer)
"""

# A wrong step (labels swapped) that also disarms the in-kernel checks.
TAMPERS_WITH_CHECKS = (
    _d_step(
        loss="bce(gan.discriminate(x_real), torch.zeros(len(x_real), 1))"
        " + bce(gan.discriminate(x_fake), torch.ones(len(x_fake), 1))"
    )
    + """
import coursepkg.grading.lab_2d_gan
torch.allclose = lambda *args, **kwargs: True
coursepkg.grading.lab_2d_gan.check = lambda *args, **kwargs: None
"""
)

# A wrong loss (saturating) that also rewrites the reference to agree with it.
PATCHES_REFERENCE = (
    _g_step(loss="-bce(logits, torch.zeros_like(logits))")
    + """
import coursepkg.toy2d.losses
coursepkg.toy2d.losses.generator_loss = lambda logits: -nn.functional.binary_cross_entropy_with_logits(
    logits, torch.zeros_like(logits)
)
"""
)

# ---------------------------------------------------------------- variants


@dataclass(frozen=True)
class Variant:
    """A submission: solution cells replaced, and what grading should make of it.

    Attributes:
        cells: solution ``grade_id`` -> replacement source.
        added: cells the student inserted: ``grade_id`` of the cell each one goes right
            before -> its source (a code cell without nbgrader metadata, as Jupyter makes it).
        fails: test cells (``grade_id``) that must lose their points.
        message: text the failure message must contain.
        kernel_passes: True when only the isolated re-run can catch it (the
            submission fools or disarms the checks inside its own kernel).
    """

    cells: dict[str, str]
    fails: frozenset[str] = field(default_factory=frozenset)
    message: str = ""
    kernel_passes: bool = False
    added: dict[str, str] = field(default_factory=dict)


def _wrong(cell: str, source: str, test: str, message: str, *, kernel_passes: bool = False) -> Variant:
    return Variant({cell: source}, frozenset({test}), message, kernel_passes)


CORRECT: dict[str, Variant] = {
    "relu_gan_sgd_loop_broadcast_mmd": Variant(
        {
            "gan_solution": GAN_RELU,
            "discriminator_step_solution": D_STEP_PROBABILITIES,
            "generator_step_solution": _g_step(loss="-nn.functional.logsigmoid(logits).mean()"),
            "train_gan_solution": _loop(),
            "mmd2_solution": MMD_BROADCAST,
        }
    ),
    "concatenated_batch_and_bce_on_probabilities": Variant(
        {
            "discriminator_step_solution": D_STEP_CONCATENATED,
            "generator_step_solution": _g_step(
                loss="nn.BCELoss()(torch.sigmoid(logits), torch.ones_like(logits))", zero="gan.zero_grad()"
            ),
        }
    ),
}

WRONG: dict[str, Variant] = {
    "discriminator_ends_with_sigmoid": _wrong("gan_solution", _gan(final_d=", nn.Sigmoid()"), "test_gan", "sigmoid"),
    "generator_ends_with_tanh": _wrong("gan_solution", _gan(final_g=", nn.Tanh()"), "test_gan", "tanh"),
    "uniform_latent_noise": _wrong(
        "gan_solution", _gan(noise="torch.rand(n, self.latent_dim)"), "test_sample", "standard normal"
    ),
    "latent_of_data_dimension": _wrong(
        "gan_solution", _gan(noise="torch.randn(n, self.dim)"), "test_sample", "latent_dim"
    ),
    "no_detach": _wrong(
        "discriminator_step_solution", _d_step(fake="gan.generator(z)"), "test_discriminator_step", "detach"
    ),
    "labels_swapped": _wrong(
        "discriminator_step_solution",
        _d_step(
            loss="bce(gan.discriminate(x_real), torch.zeros(len(x_real), 1))"
            " + bce(gan.discriminate(x_fake), torch.ones(len(x_fake), 1))"
        ),
        "test_discriminator_step",
        "swapped",
    ),
    "sigmoid_before_logits_loss": _wrong(
        "discriminator_step_solution",
        _d_step(
            loss="bce(torch.sigmoid(gan.discriminate(x_real)), torch.ones(len(x_real), 1))"
            " + bce(torch.sigmoid(gan.discriminate(x_fake)), torch.zeros(len(x_fake), 1))"
        ),
        "test_discriminator_step",
        "sigmoid is applied before",
    ),
    "d_gradients_never_zeroed": _wrong(
        "discriminator_step_solution", _d_step(zero="pass"), "test_discriminator_step", "zero_grad"
    ),
    "saturating_generator_loss": _wrong(
        "generator_step_solution",
        _g_step(loss="-bce(logits, torch.zeros_like(logits))"),
        "test_generator_step",
        "saturating",
    ),
    "g_gradients_never_zeroed": _wrong(
        "generator_step_solution", _g_step(zero="pass"), "test_generator_step", "zero_grad"
    ),
    "generator_never_steps": _wrong(
        "generator_step_solution", _g_step(step="pass"), "test_generator_step", "did not change"
    ),
    "one_optimizer_for_both": _wrong(
        "train_gan_solution",
        _loop(optimizers="d_opt = g_opt = torch.optim.Adam(gan.parameters(), lr=lr)"),
        "test_train_gan",
        "optimizer",
    ),
    "loop_uniform_noise": _wrong(
        "train_gan_solution", _loop(noise="torch.rand(batch_size, gan.latent_dim)"), "test_train_gan", "standard normal"
    ),
    "loop_ignores_d_steps": _wrong("train_gan_solution", _loop(inner="range(1)"), "test_train_gan", "order"),
    "loop_fixed_noise": _wrong("train_gan_solution", LOOP_FIXED_NOISE, "test_train_gan", "same latent batch"),
    "mmd_unbiased": _wrong("mmd2_solution", MMD_UNBIASED, "test_mmd2", "i = j"),
    "mmd_without_factor_2": _wrong("mmd2_solution", MMD_NO_FACTOR_2, "test_mmd2", "factor 2"),
    "wraps_the_reference": _wrong(
        "discriminator_step_solution",
        WRAPS_REFERENCE,
        "test_discriminator_step",
        "reference solutions",
        kernel_passes=True,
    ),
    "tampers_with_the_checks": _wrong(
        "discriminator_step_solution", TAMPERS_WITH_CHECKS, "test_discriminator_step", "swapped", kernel_passes=True
    ),
    "patches_the_reference": _wrong(
        "generator_step_solution", PATCHES_REFERENCE, "test_generator_step", "saturating", kernel_passes=True
    ),
}

#: Which checks each test cell of the lab runs.
TEST_CELL_CHECKS: dict[str, tuple[str, ...]] = {
    "test_gan": ("gan", "gan_details"),
    "test_sample": ("sample", "sample_details"),
    "test_discriminator_step": ("discriminator_step", "discriminator_step_details"),
    "test_generator_step": ("generator_step", "generator_step_details"),
    "test_train_gan": ("train_gan", "train_gan_details"),
    "test_mmd2": ("mmd2", "mmd2_details"),
}
