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

# Helpers in cells the student inserted (``Variant.added``), and the solutions that use them.

ADDED_MLP = """
def mlp(sizes, activation):
    \"\"\"nn.Linear layers of the given sizes with `activation` between them, ending with the last nn.Linear.\"\"\"
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), activation()]
    return nn.Sequential(*layers[:-1])
"""

# The mistake is in the helper: it keeps the activation after the last layer.
ADDED_MLP_KEEPS_LAST_ACTIVATION = ADDED_MLP.replace("layers[:-1]", "layers")

# Parameters renamed (the text passes them by position), ELU and tanh hidden layers, the device from the
# generator's parameters.
GAN_FROM_HELPER = """
class GAN(nn.Module):
    def __init__(self, data_dim, width, noise_dim):
        super().__init__()
        self.dim = data_dim
        self.latent_dim = noise_dim
        self.generator = mlp([noise_dim, width, width, data_dim], nn.ELU)
        self.discriminator = mlp([data_dim, width, width, 1], nn.Tanh)

    def discriminate(self, points):
        return self.discriminator(points)

    def sample(self, count):
        device = next(self.generator.parameters()).device
        with torch.no_grad():
            return self.generator(torch.randn(count, self.latent_dim, device=device))
"""

ADDED_BCE = """
bce = nn.BCEWithLogitsLoss()


def bce_against(logits, label):
    \"\"\"BCE of (n, 1) logits against one label for the whole batch.\"\"\"
    return bce(logits, torch.full_like(logits, label))
"""

D_STEP_FROM_HELPER = """
def discriminator_step(gan, x_real, z, optimizer):
    x_fake = gan.generator(z).detach()
    loss = bce_against(gan.discriminate(x_real), 1.0) + bce_against(gan.discriminate(x_fake), 0.0)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
"""

G_STEP_FROM_HELPER = """
def generator_step(gan, z, optimizer):
    loss = bce_against(gan.discriminate(gan.generator(z)), 1.0)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
"""

ADDED_KERNEL_WRONG_WIDTH = """
def gaussian_kernel(a, b, bandwidth):
    return torch.exp(-torch.cdist(a, b) ** 2 / bandwidth**2)
"""

MMD_FROM_HELPER = """
def mmd2(x, y, *, bandwidth=0.5):
    k = lambda a, b: gaussian_kernel(a, b, bandwidth).mean()
    return (k(x, x) + k(y, y) - 2 * k(x, y)).item()
"""

# A hand-written MLP module with functional tanh and ReLU hidden layers; sample() detaches instead of no_grad.
GAN_HAND_WRITTEN = """
class MLP(nn.Module):
    def __init__(self, n_in, width, n_out, activation):
        super().__init__()
        self.hidden = nn.Linear(n_in, width)
        self.out = nn.Linear(width, n_out)
        self.activation = activation

    def forward(self, x):
        return self.out(self.activation(self.hidden(x)))


class GAN(nn.Module):
    def __init__(self, dim, h, latent_dim):
        super().__init__()
        self.latent_dim = latent_dim
        self.generator = MLP(latent_dim, h, dim, torch.tanh)
        self.discriminator = MLP(dim, h, 1, torch.relu)

    def discriminate(self, x):
        return self.discriminator(x)

    def sample(self, n):
        z = torch.randn(n, self.latent_dim, device=self.generator.hidden.weight.device)
        return self.generator(z).detach()
"""

# Each step freezes the other player instead of detaching, and restores it; parameters renamed.
D_STEP_FREEZES_AND_RESTORES = """
def discriminator_step(model, real, noise, opt):
    model.generator.requires_grad_(False)
    model.generator.eval()
    try:
        fake = model.generator(noise)
    finally:
        model.generator.requires_grad_(True)
        model.generator.train()
    real_logits, fake_logits = model.discriminate(real), model.discriminate(fake)
    bce = nn.functional.binary_cross_entropy_with_logits
    loss = bce(real_logits, torch.ones_like(real_logits)) + bce(fake_logits, torch.zeros_like(fake_logits))
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()
"""

G_STEP_FREEZES_AND_RESTORES = """
def generator_step(model, noise, opt):
    for p in model.discriminator.parameters():
        p.requires_grad = False
    logits = model.discriminate(model.generator(noise))
    loss = nn.functional.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    opt.zero_grad()
    loss.backward()
    opt.step()
    for p in model.discriminator.parameters():
        p.requires_grad = True
    return loss.item()
"""

# The usual "set_requires_grad" pattern done halfway: the discriminator step unfreezes D (correct on its own),
# the generator step freezes it and leaves it frozen.
D_STEP_UNFREEZES_FIRST = """
def discriminator_step(gan, x_real, z, optimizer):
    gan.discriminator.requires_grad_(True)
    bce = nn.BCEWithLogitsLoss()
    x_fake = gan.generator(z).detach()
    real_logits, fake_logits = gan.discriminate(x_real), gan.discriminate(x_fake)
    loss = bce(real_logits, torch.ones_like(real_logits)) + bce(fake_logits, torch.zeros_like(fake_logits))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
"""

G_STEP_FREEZES_FOR_GOOD = """
def generator_step(gan, z, optimizer):
    gan.discriminator.requires_grad_(False)
    logits = gan.discriminate(gan.generator(z))
    loss = nn.functional.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
"""

G_STEP_OWN_OPTIMIZER = """
def generator_step(gan, z, optimizer):
    own = torch.optim.Adam(gan.generator.parameters(), lr=1e-3, betas=(0.5, 0.999))
    logits = gan.discriminate(gan.generator(z))
    loss = nn.functional.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    own.zero_grad()
    loss.backward()
    own.step()
    return loss.item()
"""

# Keyword calls, SGD with momentum, tuples for the history, an MMD logged with the student's own mmd2.
LOOP_KEYWORDS_TUPLES_AND_MMD_LOG = """
def train_gan(model, draw, *, n_steps, d_steps, batch_size, lr):
    d_opt = torch.optim.SGD(model.discriminator.parameters(), lr=lr, momentum=0.5)
    g_opt = torch.optim.SGD(model.generator.parameters(), lr=lr, momentum=0.5)
    d_losses, g_losses, mmds = [], [], []
    for step in range(n_steps):
        for _ in range(d_steps):
            noise = torch.randn(batch_size, model.latent_dim)
            d_losses.append(discriminator_step(model, draw(batch_size), noise, optimizer=d_opt))
        g_losses.append(generator_step(gan=model, z=torch.randn(batch_size, model.latent_dim), optimizer=g_opt))
        if step % 100 == 0:
            mmds.append(mmd2(model.sample(64), draw(64)))
    return {"d_loss": tuple(d_losses), "g_loss": tuple(g_losses), "mmd": mmds}
"""

# The optimizers made inside the loop: Adam starts from scratch at every step.
LOOP_NEW_OPTIMIZERS_EVERY_STEP = """
def train_gan(gan, sampler, *, n_steps, d_steps, batch_size, lr):
    history = {"d_loss": [], "g_loss": []}
    for _ in range(n_steps):
        for _ in range(d_steps):
            d_opt = torch.optim.Adam(gan.discriminator.parameters(), lr=lr, betas=(0.5, 0.999))
            z = torch.randn(batch_size, gan.latent_dim)
            history["d_loss"].append(discriminator_step(gan, sampler(batch_size), z, d_opt))
        g_opt = torch.optim.Adam(gan.generator.parameters(), lr=lr, betas=(0.5, 0.999))
        history["g_loss"].append(generator_step(gan, torch.randn(batch_size, gan.latent_dim), g_opt))
    return history
"""

LOOP_HISTORY_AS_TENSORS = """
def train_gan(gan, sampler, *, n_steps, d_steps, batch_size, lr):
    d_opt = torch.optim.Adam(gan.discriminator.parameters(), lr=lr, betas=(0.5, 0.999))
    g_opt = torch.optim.Adam(gan.generator.parameters(), lr=lr, betas=(0.5, 0.999))
    d_losses, g_losses = [], []
    for _ in range(n_steps):
        for _ in range(d_steps):
            z = torch.randn(batch_size, gan.latent_dim)
            d_losses.append(discriminator_step(gan, sampler(batch_size), z, d_opt))
        g_losses.append(generator_step(gan, torch.randn(batch_size, gan.latent_dim), g_opt))
    return {"d_loss": torch.tensor(d_losses), "g_loss": torch.tensor(g_losses)}
"""

MMD_HAND_WRITTEN = """
def mmd2(a, b, *, bandwidth=0.5):
    def mean_kernel(p, q):
        squared = (p.unsqueeze(1) - q.unsqueeze(0)).pow(2).sum(dim=2)
        return torch.exp(-squared / (2 * bandwidth * bandwidth)).mean()

    return float(mean_kernel(a, a) + mean_kernel(b, b) - 2 * mean_kernel(a, b))
"""

# squeeze() to accept (n, 1) data: a sample of one point becomes a vector, and cdist refuses it.
MMD_SQUEEZES = """
def mmd2(x, y, *, bandwidth=0.5):
    x, y = x.squeeze(), y.squeeze()
    k = lambda a, b: torch.exp(-torch.cdist(a, b) ** 2 / (2 * bandwidth ** 2)).mean()
    return (k(x, x) + k(y, y) - 2 * k(x, y)).item()
"""


def _gan_layers(g_hidden: str = "", d_hidden: str = "") -> str:
    """The variants' GAN with a module inserted after each hidden activation of the generator or discriminator."""
    return (
        _gan()
        .replace(
            "nn.Linear(latent_dim, h), nn.LeakyReLU(0.2),", f"nn.Linear(latent_dim, h), nn.LeakyReLU(0.2),{g_hidden}"
        )
        .replace("nn.Linear(dim, h), nn.LeakyReLU(0.2),", f"nn.Linear(dim, h), nn.LeakyReLU(0.2),{d_hidden}")
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


def _wrong_cells(cells: dict[str, str], test: str, message: str, *, added: dict[str, str] | None = None) -> Variant:
    """A mistake spread over several cells (or in an inserted one) that costs the points of ``test`` only."""
    return Variant(cells, frozenset({test}), message, added=added or {})


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
    "helpers_in_inserted_cells": Variant(
        {
            "gan_solution": GAN_FROM_HELPER,
            "discriminator_step_solution": D_STEP_FROM_HELPER,
            "generator_step_solution": G_STEP_FROM_HELPER,
        },
        added={"gan_solution": ADDED_MLP, "discriminator_step_solution": ADDED_BCE},
    ),
    "steps_freeze_the_other_player_and_restore_it": Variant(
        {
            "discriminator_step_solution": D_STEP_FREEZES_AND_RESTORES,
            "generator_step_solution": G_STEP_FREEZES_AND_RESTORES,
        }
    ),
    "hand_written_mlp_keyword_calls_tuples_and_logged_mmd": Variant(
        {
            "gan_solution": GAN_HAND_WRITTEN,
            "train_gan_solution": LOOP_KEYWORDS_TUPLES_AND_MMD_LOG,
            "mmd2_solution": MMD_HAND_WRITTEN,
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
    "inserted_mlp_helper_keeps_the_last_activation": _wrong_cells(
        {"gan_solution": GAN_FROM_HELPER},
        "test_gan",
        "after its last nn.Linear",
        added={"gan_solution": ADDED_MLP_KEEPS_LAST_ACTIVATION},
    ),
    "inserted_kernel_helper_divides_by_bandwidth_squared": _wrong_cells(
        {"mmd2_solution": MMD_FROM_HELPER},
        "test_mmd2",
        "2 * bandwidth**2",
        added={"mmd2_solution": ADDED_KERNEL_WRONG_WIDTH},
    ),
    "generator_ends_with_relu": _wrong("gan_solution", _gan(final_g=", nn.ReLU()"), "test_gan", "a ReLU"),
    "discriminator_ends_with_tanh": _wrong("gan_solution", _gan(final_d=", nn.Tanh()"), "test_gan", "applies tanh"),
    "discriminator_ends_with_leaky_relu": _wrong(
        "gan_solution", _gan(final_d=", nn.LeakyReLU(0.2)"), "test_gan", "a LeakyReLU(0.2)"
    ),
    "discriminator_with_dropout": _wrong(
        "gan_solution", _gan_layers(d_hidden=" nn.Dropout(0.3),"), "test_gan", "dropout"
    ),
    "generator_with_batch_norm": _wrong(
        "gan_solution", _gan_layers(g_hidden=" nn.BatchNorm1d(h),"), "test_gan", "batch normalisation"
    ),
    "sample_keeps_the_graph": _wrong(
        "gan_solution", GAN_RELU.replace(").detach()", ")"), "test_sample", "autograd graph"
    ),
    "d_step_returns_the_loss_tensor": _wrong(
        "discriminator_step_solution",
        _d_step().replace("return loss.item()", "return loss"),
        "test_discriminator_step",
        "not a Python float",
    ),
    "d_step_leaves_the_generator_in_eval_mode": _wrong(
        "discriminator_step_solution",
        _d_step(fake="gan.generator.eval()(z).detach()"),
        "test_discriminator_step",
        "the generator is in eval() mode",
    ),
    "g_step_leaves_the_discriminator_frozen": _wrong_cells(
        {"discriminator_step_solution": D_STEP_UNFREEZES_FIRST, "generator_step_solution": G_STEP_FREEZES_FOR_GOOD},
        "test_generator_step",
        "requires_grad=False",
    ),
    "g_step_makes_its_own_optimizer": _wrong(
        "generator_step_solution", G_STEP_OWN_OPTIMIZER, "test_generator_step", "the optimizer it was given"
    ),
    "loop_makes_new_optimizers_every_step": _wrong(
        "train_gan_solution",
        LOOP_NEW_OPTIMIZERS_EVERY_STEP,
        "test_train_gan",
        "different optimizers",
    ),
    "loop_ignores_lr": _wrong(
        "train_gan_solution",
        _loop(
            optimizers="d_opt = torch.optim.Adam(gan.discriminator.parameters(), lr=2e-4)\n"
            "    g_opt = torch.optim.Adam(gan.generator.parameters(), lr=2e-4)"
        ),
        "test_train_gan",
        "lr=lr",
    ),
    "loop_history_as_tensors": _wrong(
        "train_gan_solution", LOOP_HISTORY_AS_TENSORS, "test_train_gan", "must hold Python floats"
    ),
    "mmd_squeezes_a_one_point_sample": _wrong("mmd2_solution", MMD_SQUEEZES, "test_mmd2", "one point in each sample"),
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
