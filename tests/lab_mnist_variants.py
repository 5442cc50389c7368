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

# ---------------------------------------------------------------- cells the student added

#: A helper cell inserted before the generator's, used by both networks.
BLOCK_HELPER = """
LATENT = 128


def block(n_in, n_out, dropout=0.0):
    \"\"\"nn.Linear(n_in, n_out), LeakyReLU(0.2) and, if asked, dropout: a list of layers.\"\"\"
    layers = [nn.Linear(n_in, n_out), nn.LeakyReLU(0.2, inplace=True)]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return layers
"""

GENERATOR_FROM_BLOCKS = """
class Generator(nn.Module):
    def __init__(self, latent_dim=LATENT):
        super().__init__()
        self.latent_dim = latent_dim
        self.model = nn.Sequential(
            *block(latent_dim, 256), *block(256, 512), *block(512, 1024), nn.Linear(1024, 784), nn.Tanh()
        )

    def forward(self, z):
        return self.model(z)
"""

DISCRIMINATOR_FROM_BLOCKS = """
class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(
            nn.Flatten(), *block(784, 1024, 0.3), *block(1024, 512, 0.3), *block(512, 256, 0.3), nn.Linear(256, 1)
        )

    def forward(self, x):
        return self.model(x)
"""

#: A loss helper cell inserted before the losses' cell.
BCE_HELPER = """
def bce(logits, label):
    \"\"\"Mean BCE of (n, 1) logits against a constant label.\"\"\"
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label))
"""

LOSSES_FROM_HELPER = """
def discriminator_loss(real_logits, fake_logits):
    return bce(real_logits, 1.0) + bce(fake_logits, 0.0)


def generator_loss(fake_logits):
    return bce(fake_logits, 1.0)
"""

#: The same helper with a sigmoid too many: a mistake both losses inherit.
BCE_HELPER_SIGMOID_FIRST = """
def bce(logits, label):
    probabilities = torch.sigmoid(logits)
    return F.binary_cross_entropy_with_logits(probabilities, torch.full_like(probabilities, label))
"""

#: The generator's layers from a helper with the wrong activation (the discriminator does not use it).
RELU_BLOCK_HELPER = """
def block(n_in, n_out):
    return [nn.Linear(n_in, n_out), nn.ReLU()]
"""

GENERATOR_FROM_RELU_BLOCKS = """
class Generator(nn.Module):
    def __init__(self, latent_dim=128):
        super().__init__()
        self.latent_dim = latent_dim
        self.model = nn.Sequential(
            *block(latent_dim, 256), *block(256, 512), *block(512, 1024), nn.Linear(1024, 784), nn.Tanh()
        )

    def forward(self, z):
        return self.model(z)
"""

#: The step's losses under other names, bound in a cell the student inserted before the step.
LOSS_ALIASES = """
d_criterion, g_criterion = discriminator_loss, generator_loss
"""

STEP_THROUGH_ALIASES = """
def train_step(generator, discriminator, x_real, z, d_optimizer, g_optimizer):
    x_fake = generator(z)
    d_loss = d_criterion(discriminator(x_real), discriminator(x_fake.detach()))
    d_optimizer.zero_grad()
    d_loss.backward()
    d_optimizer.step()
    g_loss = g_criterion(discriminator(x_fake))
    g_optimizer.zero_grad()
    g_loss.backward()
    g_optimizer.step()
    return d_loss.item(), g_loss.item()
"""

# ---------------------------------------------------------------- freedom the text leaves

GENERATOR_EXTRA_ARGUMENTS = """
class Generator(nn.Module):
    def __init__(self, latent_dim=128, hidden=(256, 512, 1024), image_size=784):
        super().__init__()
        self.latent_dim = latent_dim
        sizes = [latent_dim, *hidden]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.to_image = nn.Linear(sizes[-1], image_size)

    def forward(self, z):
        for layer in self.hidden:
            z = nn.functional.leaky_relu(layer(z), 0.2)
        return self.to_image(z).tanh()
"""

#: Dropout before the activation: the same function, since LeakyReLU commutes with dropout's scaling.
DISCRIMINATOR_DROPOUT_FIRST = """
class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.ModuleList([nn.Linear(784, 1024), nn.Linear(1024, 512), nn.Linear(512, 256)])
        self.drop = nn.Dropout(p=0.3)
        self.act = nn.LeakyReLU(negative_slope=0.2)
        self.logit = nn.Linear(256, 1)

    def forward(self, images):
        h = images.reshape(len(images), 784)
        for fc in self.fc:
            h = self.act(self.drop(fc(h)))
        return self.logit(h)
"""

LOSSES_RENAMED_SOFTPLUS = """
def discriminator_loss(d_real, d_fake):
    # -log sigmoid(x) = softplus(-x), -log(1 - sigmoid(x)) = softplus(x): stable for any logit.
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()


def generator_loss(d_fake):
    return F.softplus(-d_fake).mean()
"""

STEP_RENAMED_RETURNS_LIST = """
def train_step(G, D, real, noise, opt_d, opt_g):
    fake = G(noise)
    opt_d.zero_grad()
    loss_d = discriminator_loss(D(real), D(fake.detach()))
    loss_d.backward()
    opt_d.step()
    opt_g.zero_grad()
    loss_g = generator_loss(D(fake))
    loss_g.backward()
    opt_g.step()
    return [loss_d.item(), loss_g.item()]
"""

#: Freezes the discriminator for the generator's update and unfreezes it before returning.
STEP_FREEZES_AND_RESTORES = """
def train_step(generator, discriminator, x_real, z, d_optimizer, g_optimizer):
    x_fake = generator(z)
    d_optimizer.zero_grad()
    d_loss = discriminator_loss(discriminator(x_real), discriminator(x_fake.detach()))
    d_loss.backward()
    d_optimizer.step()
    for p in discriminator.parameters():
        p.requires_grad_(False)
    g_optimizer.zero_grad()
    g_loss = generator_loss(discriminator(x_fake))
    g_loss.backward()
    g_optimizer.step()
    for p in discriminator.parameters():
        p.requires_grad_(True)
    return d_loss.item(), g_loss.item()
"""


def _step_with(d_part: str = "", g_part: str = "", returns: str = "d_loss.item(), g_loss.item()") -> str:
    """The reference step with ``d_part`` after the discriminator's update and ``g_part`` after the generator's."""
    return f"""
def train_step(generator, discriminator, x_real, z, d_optimizer, g_optimizer):
    x_fake = generator(z)
    d_loss = discriminator_loss(discriminator(x_real), discriminator(x_fake.detach()))
    d_optimizer.zero_grad()
    d_loss.backward()
    d_optimizer.step()
    {d_part}
    g_loss = generator_loss(discriminator(x_fake))
    g_optimizer.zero_grad()
    g_loss.backward()
    g_optimizer.step()
    {g_part}
    return {returns}
"""


STEP_ZERO_GRAD_BEFORE_STEP = """
def train_step(generator, discriminator, x_real, z, d_optimizer, g_optimizer):
    x_fake = generator(z)
    d_loss = discriminator_loss(discriminator(x_real), discriminator(x_fake.detach()))
    d_loss.backward()
    d_optimizer.zero_grad()
    d_optimizer.step()
    g_loss = generator_loss(discriminator(x_fake))
    g_optimizer.zero_grad()
    g_loss.backward()
    g_optimizer.step()
    return d_loss.item(), g_loss.item()
"""

STEP_WRONG_OPTIMIZER = """
def train_step(generator, discriminator, x_real, z, d_optimizer, g_optimizer):
    x_fake = generator(z)
    d_loss = discriminator_loss(discriminator(x_real), discriminator(x_fake.detach()))
    d_optimizer.zero_grad()
    d_loss.backward()
    d_optimizer.step()
    g_loss = generator_loss(discriminator(x_fake))
    d_optimizer.zero_grad()
    g_loss.backward()
    d_optimizer.step()
    return d_loss.item(), g_loss.item()
"""

DISCRIMINATOR_INPUT_DROPOUT = """
class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.ModuleList([nn.Linear(784, 1024), nn.Linear(1024, 512), nn.Linear(512, 256)])
        self.out = nn.Linear(256, 1)

    def forward(self, x):
        x = F.dropout(x.flatten(1), 0.3, training=self.training)
        for layer in self.hidden:
            x = F.dropout(F.leaky_relu(layer(x), 0.2), 0.3, training=self.training)
        return self.out(x)
"""

DISCRIMINATOR_FUNCTIONAL_DROPOUT_HALF = DISCRIMINATOR_FUNCTIONAL.replace("p=0.3", "p=0.5")

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
    "helpers_in_added_cells": Variant(
        {
            "generator_solution": GENERATOR_FROM_BLOCKS,
            "discriminator_solution": DISCRIMINATOR_FROM_BLOCKS,
            "losses_solution": LOSSES_FROM_HELPER,
            "train_step_solution": STEP_THROUGH_ALIASES,
        },
        added={"generator_solution": BLOCK_HELPER, "losses_solution": BCE_HELPER, "train_step_solution": LOSS_ALIASES},
    ),
    "renamed_arguments_softplus_list_return": Variant(
        {
            "generator_solution": GENERATOR_EXTRA_ARGUMENTS,
            "discriminator_solution": DISCRIMINATOR_DROPOUT_FIRST,
            "losses_solution": LOSSES_RENAMED_SOFTPLUS,
            "train_step_solution": STEP_RENAMED_RETURNS_LIST,
        }
    ),
    "step_freezes_and_restores_the_discriminator": Variant({"train_step_solution": STEP_FREEZES_AND_RESTORES}),
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
    # cells the student added
    "generator_helper_with_relu": Variant(
        {"generator_solution": GENERATOR_FROM_RELU_BLOCKS},
        frozenset({"test_generator"}),
        "LeakyReLU(0.2)",
        added={"generator_solution": RELU_BLOCK_HELPER},
    ),
    "loss_helper_applies_a_sigmoid": Variant(
        {"losses_solution": LOSSES_FROM_HELPER},
        frozenset({"test_discriminator_loss", "test_generator_loss"}),
        "sigmoid is applied before BCE-with-logits",
        added={"losses_solution": BCE_HELPER_SIGMOID_FIRST},
    ),
    # one mistake, one exercise: the step is graded with the reference losses, whatever name it calls them by
    "saturating_loss_called_through_an_alias": Variant(
        {
            "losses_solution": _losses(
                g_loss="-F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))"
            ),
            "train_step_solution": STEP_THROUGH_ALIASES,
        },
        frozenset({"test_generator_loss"}),
        "saturating",
        added={"train_step_solution": LOSS_ALIASES},
    ),
    # names the text fixes
    "generator_latent_size_renamed": _wrong(
        "generator_solution",
        _generator()
        .replace("latent_dim=128", "z_dim=128")
        .replace("self.latent_dim = latent_dim", "self.latent_dim = z_dim")
        .replace("widths = [latent_dim", "widths = [z_dim"),
        "test_generator",
        "keyword argument latent_dim",
    ),
    # output layers
    "generator_tanh_then_relu": _wrong(
        "generator_solution", _generator(end="nn.Tanh(), nn.ReLU()"), "test_generator", "something other than"
    ),
    "generator_ends_with_hardtanh": _wrong(
        "generator_solution", _generator(end="nn.Hardtanh()"), "test_generator", "applies a hardtanh"
    ),
    "discriminator_ends_with_tanh": _wrong(
        "discriminator_solution", _discriminator(end=", nn.Tanh()"), "test_discriminator", "applies tanh"
    ),
    "discriminator_ends_with_leaky_relu": _wrong(
        "discriminator_solution",
        _discriminator(end=", nn.LeakyReLU(0.2)"),
        "test_discriminator",
        "applies a LeakyReLU(0.2)",
    ),
    # architecture extras
    "generator_with_batch_norm": _wrong(
        "generator_solution",
        _generator(act="nn.BatchNorm1d(b), nn.LeakyReLU(0.2)"),
        "test_generator",
        "batch normalisation (BatchNorm1d)",
    ),
    "generator_with_dropout": _wrong(
        "generator_solution", _generator(act="nn.LeakyReLU(0.2), nn.Dropout(0.3)"), "test_generator", "dropout"
    ),
    "discriminator_with_batch_norm": _wrong(
        "discriminator_solution",
        _discriminator(dropout="nn.BatchNorm1d(b), nn.Dropout(0.3)"),
        "test_discriminator",
        "no batch normalisation",
    ),
    "discriminator_dropout_on_the_input": _wrong(
        "discriminator_solution", DISCRIMINATOR_INPUT_DROPOUT, "test_discriminator", "before its first nn.Linear"
    ),
    "discriminator_functional_dropout_half": _wrong(
        "discriminator_solution", DISCRIMINATOR_FUNCTIONAL_DROPOUT_HALF, "test_discriminator", "is 0.50; use 0.3"
    ),
    "discriminator_squeezes_a_single_image": _wrong(
        "discriminator_solution",
        _discriminator(flatten="x.squeeze().flatten(start_dim=1)"),
        "test_discriminator",
        "single (1, 1, 28, 28) image",
    ),
    # return types and shapes
    "d_loss_per_sample": _wrong(
        "losses_solution",
        _losses(
            d_loss="F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits), reduction='none')"
            " + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits), reduction='none')"
        ),
        "test_discriminator_loss",
        "shape (6, 1)",
    ),
    "g_loss_of_shape_one": _wrong(
        "losses_solution",
        _losses(g_loss="F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits)).reshape(1)"),
        "test_generator_loss",
        "scalar (0-d) tensor",
    ),
    "step_returns_loss_tensors": _wrong(
        "train_step_solution", _step_with(returns="d_loss, g_loss"), "test_train_step", "Python floats"
    ),
    "step_returns_detached_tensors": _wrong(
        "train_step_solution",
        _step_with(returns="[d_loss.detach(), g_loss.detach()]"),
        "test_train_step",
        "not a Python float",
    ),
    # side effects on state the step does not own
    "step_leaves_the_discriminator_frozen": _wrong(
        "train_step_solution",
        _step_with(d_part="discriminator.requires_grad_(False)"),
        "test_train_step",
        "requires_grad=False",
    ),
    "step_leaves_the_discriminator_in_eval_mode": _wrong(
        "train_step_solution", _step_with(d_part="discriminator.eval()"), "test_train_step", "eval() mode"
    ),
    "step_zeroes_between_backward_and_step": _wrong(
        "train_step_solution",
        STEP_ZERO_GRAD_BEFORE_STEP,
        "test_train_step",
        "did not change the discriminator's parameters",
    ),
    "step_updates_the_generator_with_d_optimizer": _wrong(
        "train_step_solution", STEP_WRONG_OPTIMIZER, "test_train_step", "g_optimizer.step() 0 times"
    ),
    # edges
    "losses_bce_on_probabilities": Variant(
        {
            "losses_solution": _losses(
                d_loss="nn.BCELoss()(torch.sigmoid(real_logits), torch.ones_like(real_logits))"
                " + nn.BCELoss()(torch.sigmoid(fake_logits), torch.zeros_like(fake_logits))",
                g_loss="nn.BCELoss()(torch.sigmoid(fake_logits), torch.ones_like(fake_logits))",
            )
        },
        frozenset({"test_discriminator_loss", "test_generator_loss"}),
        "clamps its log at -100",
    ),
    "d_loss_squeezes_a_batch_of_one": _wrong(
        "losses_solution",
        _losses(
            d_loss="F.binary_cross_entropy_with_logits(real_logits.squeeze(), torch.ones(len(real_logits)))"
            " + F.binary_cross_entropy_with_logits(fake_logits.squeeze(), torch.zeros(len(fake_logits)))"
        ),
        "test_discriminator_loss",
        "'batch of one'",
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
