"""Submissions to the MNIST GAN lab: correct ones written unlike ours, and real mistakes."""

from __future__ import annotations

from tests.lab_2d_variants import Variant, _wrong

# ---------------------------------------------------------------- networks


def _generator(
    widths: str = "latent_dim, 256, 512, 1024", act: str = "nn.LeakyReLU(0.2)", end: str = "nn.Tanh()"
) -> str:
    return f"""
class Generator(nn.Module):
    def __init__(self, latent_dim=128):
        super().__init__()
        self.latent_dim = latent_dim
        widths = [{widths}]
        layers = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), {act}]
        self.net = nn.Sequential(*layers, nn.Linear(widths[-1], 784), {end})

    def forward(self, z):
        return self.net(z)
"""


GENERATOR_FUNCTIONAL = """
class Generator(nn.Module):
    def __init__(self, latent_dim: int = 128):
        super().__init__()
        self.latent_dim = latent_dim
        self.fc1 = nn.Linear(latent_dim, 256)
        self.fc2 = nn.Linear(256, 512)
        self.fc3 = nn.Linear(512, 1024)
        self.out = nn.Linear(1024, 784)

    def forward(self, z):
        h = F.leaky_relu(self.fc1(z), negative_slope=0.2)
        h = F.leaky_relu(self.fc2(h), negative_slope=0.2)
        h = F.leaky_relu(self.fc3(h), negative_slope=0.2)
        return torch.tanh(self.out(h))
"""


def _discriminator(end: str = "", dropout: str = "nn.Dropout(0.3)", flatten: str = "x.flatten(start_dim=1)") -> str:
    return f"""
class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        layers = []
        for a, b in [(784, 1024), (1024, 512), (512, 256)]:
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2), {dropout}]
        self.net = nn.Sequential(*layers, nn.Linear(256, 1){end})

    def forward(self, x):
        return self.net({flatten})
"""


DISCRIMINATOR_FUNCTIONAL = """
class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.ModuleList([nn.Linear(784, 1024), nn.Linear(1024, 512), nn.Linear(512, 256)])
        self.out = nn.Linear(256, 1)

    def forward(self, x):
        x = x.view(x.size(0), -1)
        for layer in self.hidden:
            x = F.dropout(F.leaky_relu(layer(x), 0.2), p=0.3, training=self.training)
        return self.out(x)
"""

# ---------------------------------------------------------------- losses


def _losses(d_loss: str | None = None, g_loss: str | None = None) -> str:
    d_loss = d_loss or (
        "F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))"
        " + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))"
    )
    g_loss = g_loss or "F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))"
    return f"""
def discriminator_loss(real_logits, fake_logits):
    return {d_loss}


def generator_loss(fake_logits):
    return {g_loss}
"""


LOSSES_LOGSIGMOID = _losses(
    d_loss="-F.logsigmoid(real_logits).mean() - F.logsigmoid(-fake_logits).mean()",
    g_loss="-F.logsigmoid(fake_logits).mean()",
)

# ---------------------------------------------------------------- the training step


def _step(
    d_fake: str = "x_fake.detach()", zero_d: str = "d_optimizer.zero_grad()", zero_g: str = "g_optimizer.zero_grad()"
) -> str:
    return f"""
def train_step(generator, discriminator, x_real, z, d_optimizer, g_optimizer):
    x_fake = generator(z)
    d_loss = discriminator_loss(discriminator(x_real), discriminator({d_fake}))
    {zero_d}
    d_loss.backward()
    d_optimizer.step()
    g_loss = generator_loss(discriminator(x_fake))
    {zero_g}
    g_loss.backward()
    g_optimizer.step()
    return d_loss.item(), g_loss.item()
"""


STEP_TWO_FORWARDS = """
def train_step(generator, discriminator, x_real, z, d_optimizer, g_optimizer):
    # The discriminator's turn: fakes made without a graph at all.
    discriminator.zero_grad()
    with torch.no_grad():
        fakes = generator(z)
    loss_d = discriminator_loss(discriminator(x_real), discriminator(fakes))
    loss_d.backward()
    d_optimizer.step()
    # The generator's turn: a fresh forward pass through both networks.
    generator.zero_grad()
    loss_g = generator_loss(discriminator(generator(z)))
    loss_g.backward()
    g_optimizer.step()
    return float(loss_d), float(loss_g)
"""

STEP_OLD_DISCRIMINATOR = """
def train_step(generator, discriminator, x_real, z, d_optimizer, g_optimizer):
    x_fake = generator(z)
    fake_logits = discriminator(x_fake)
    d_loss = discriminator_loss(discriminator(x_real), fake_logits.detach())
    d_optimizer.zero_grad()
    d_loss.backward()
    d_optimizer.step()
    g_loss = generator_loss(fake_logits)
    g_optimizer.zero_grad()
    g_loss.backward()
    g_optimizer.step()
    return d_loss.item(), g_loss.item()
"""

WRAPS_REFERENCE = """
from coursepkg.mnist import models as mnist_models


def train_step(generator, discriminator, x_real, z, d_optimizer, g_optimizer):
    return mnist_models.train_step(generator, discriminator, x_real, z, d_optimizer, g_optimizer)
"""

# ---------------------------------------------------------------- the variants

CORRECT: dict[str, Variant] = {
    "functional_layers_logsigmoid_two_forwards": Variant(
        {
            "generator_solution": GENERATOR_FUNCTIONAL,
            "discriminator_solution": DISCRIMINATOR_FUNCTIONAL,
            "losses_solution": LOSSES_LOGSIGMOID,
            "train_step_solution": STEP_TWO_FORWARDS,
        }
    ),
    "loop_built_networks": Variant({"generator_solution": _generator(), "discriminator_solution": _discriminator()}),
}

WRONG: dict[str, Variant] = {
    "generator_relu": _wrong("generator_solution", _generator(act="nn.ReLU()"), "test_generator", "LeakyReLU(0.2)"),
    "generator_default_leaky_slope": _wrong(
        "generator_solution", _generator(act="nn.LeakyReLU()"), "test_generator", "default slope"
    ),
    "generator_without_tanh": _wrong(
        "generator_solution", _generator(end="nn.Identity()"), "test_generator", "nn.Tanh()"
    ),
    "generator_ends_with_sigmoid": _wrong(
        "generator_solution", _generator(end="nn.Sigmoid()"), "test_generator", "sigmoid"
    ),
    "generator_missing_a_layer": _wrong(
        "generator_solution", _generator(widths="latent_dim, 256, 1024"), "test_generator", "(in, out)"
    ),
    "generator_ignores_latent_dim": _wrong(
        "generator_solution", _generator(widths="128, 256, 512, 1024"), "test_generator", "latent_dim"
    ),
    "discriminator_ends_with_sigmoid": _wrong(
        "discriminator_solution", _discriminator(end=", nn.Sigmoid()"), "test_discriminator", "sigmoid"
    ),
    "discriminator_without_dropout": _wrong(
        "discriminator_solution", _discriminator(dropout="nn.Identity()"), "test_discriminator", "no dropout"
    ),
    "discriminator_dropout_half": _wrong(
        "discriminator_solution", _discriminator(dropout="nn.Dropout(0.5)"), "test_discriminator", "0.3"
    ),
    "discriminator_does_not_flatten": _wrong(
        "discriminator_solution", _discriminator(flatten="x"), "test_discriminator", "RuntimeError"
    ),
    "d_loss_labels_swapped": _wrong(
        "losses_solution",
        _losses(
            d_loss="F.binary_cross_entropy_with_logits(real_logits, torch.zeros_like(real_logits))"
            " + F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))"
        ),
        "test_discriminator_loss",
        "swapped",
    ),
    "d_loss_averaged": _wrong(
        "losses_solution",
        _losses(
            d_loss="(F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))"
            " + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))) / 2"
        ),
        "test_discriminator_loss",
        "averaged",
    ),
    "g_loss_saturating": _wrong(
        "losses_solution",
        _losses(g_loss="-F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))"),
        "test_generator_loss",
        "saturating",
    ),
    "g_loss_returns_a_float": _wrong(
        "losses_solution",
        _losses(g_loss="F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits)).item()"),
        "test_generator_loss",
        "carries gradients",
    ),
    "losses_through_log_of_sigmoid": Variant(
        {
            "losses_solution": _losses(
                d_loss="-torch.log(torch.sigmoid(real_logits)).mean()"
                " - torch.log(1 - torch.sigmoid(fake_logits)).mean()",
                g_loss="-torch.log(torch.sigmoid(fake_logits)).mean()",
            )
        },
        frozenset({"test_discriminator_loss", "test_generator_loss"}),
        "underflows",
    ),
    "step_without_detach": _wrong("train_step_solution", _step(d_fake="x_fake"), "test_train_step", "detach"),
    "step_without_zero_grad_in_d": _wrong(
        "train_step_solution", _step(zero_d="pass"), "test_train_step", "d_optimizer.zero_grad()"
    ),
    "step_without_zero_grad_in_g": _wrong(
        "train_step_solution", _step(zero_g="pass"), "test_train_step", "g_optimizer.zero_grad()"
    ),
    "step_scores_with_the_old_discriminator": _wrong(
        "train_step_solution", STEP_OLD_DISCRIMINATOR, "test_train_step", "inplace"
    ),
    "wraps_the_reference": _wrong(
        "train_step_solution", WRAPS_REFERENCE, "test_train_step", "reference solutions", kernel_passes=True
    ),
}

#: Which checks each test cell of the lab runs.
TEST_CELL_CHECKS: dict[str, tuple[str, ...]] = {
    "test_generator": ("generator", "generator_details"),
    "test_discriminator": ("discriminator", "discriminator_details"),
    "test_discriminator_loss": ("discriminator_loss", "discriminator_loss_details"),
    "test_generator_loss": ("generator_loss", "generator_loss_details"),
    "test_train_step": ("train_step", "train_step_details"),
}
