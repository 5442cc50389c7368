"""The trained models the course ships: MNIST generator, discriminator and LeNet-5.

The weights live in ``coursepkg/mnist/weights`` beside ``manifest.json``, which
records for each file its sha256, the architecture, the exact digits it was
trained on, the training command, seed and epochs, and the metrics measured on
held-out digits. :func:`load` refuses a file whose checksum does not match and
reads it with ``torch.load(..., weights_only=True)``, which cannot run code.
"""

from __future__ import annotations

import hashlib
import io
import json
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from coursepkg.mnist.lenet import LeNet5
from coursepkg.mnist.models import Discriminator, Generator
from coursepkg.util.files import write_atomic, write_json

__all__ = ["MODELS", "load", "manifest", "save", "weights_dir"]

#: The shipped models and how to build each from its manifest entry's ``config``.
MODELS: dict[str, Any] = {
    "generator": lambda config: Generator(config["latent_dim"], tuple(config["hidden"])),
    "discriminator": lambda config: Discriminator(tuple(config["hidden"]), dropout=config["dropout"]),
    "lenet5": lambda config: LeNet5(),
}


def weights_dir() -> Path:
    """The folder of the shipped weights and their manifest, inside the installed package."""
    return Path(str(resources.files("coursepkg.mnist") / "weights"))


def manifest(folder: str | Path | None = None) -> dict[str, Any]:
    """The parsed ``manifest.json`` of ``folder`` (the shipped weights by default)."""
    path = Path(folder or weights_dir()) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the shipped models are not installed. Reinstall coursepkg.")
    return json.loads(path.read_text())


def load(name: str, *, folder: str | Path | None = None) -> nn.Module:
    """Load a shipped model, checked against its manifest, in eval mode on the CPU.

    Args:
        name: ``"generator"``, ``"discriminator"`` or ``"lenet5"``.
        folder: where the weights and manifest are (the shipped ones by default).

    Returns:
        The model: the :class:`~coursepkg.mnist.models.Generator` maps ``(n, 128)``
        noise to ``(n, 784)`` images in ``[-1, 1]``; the
        :class:`~coursepkg.mnist.models.Discriminator` returns ``(n, 1)`` logits;
        :class:`~coursepkg.mnist.lenet.LeNet5` returns ``(n, 10)`` log-probabilities.

    Raises:
        ValueError: for an unknown ``name``, or a file whose sha256 differs from the manifest.
    """
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; the course ships {sorted(MODELS)}.")
    folder = Path(folder or weights_dir())
    entry = manifest(folder)["models"][name]
    data = (folder / entry["file"]).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry["sha256"]:
        raise ValueError(
            f"{folder / entry['file']} has sha256 {digest}, but the manifest expects {entry['sha256']}: "
            "the file is corrupt or was replaced. Reinstall coursepkg, or re-export the models."
        )
    model = MODELS[name](entry["config"])
    model.load_state_dict(torch.load(io.BytesIO(data), map_location="cpu", weights_only=True))
    return model.eval()


def save(folder: str | Path, name: str, model: nn.Module, entry: dict[str, Any]) -> None:
    """Write a model's weights into ``folder`` and record it in the folder's manifest.

    Args:
        folder: destination; created if missing.
        name: one of :data:`MODELS`.
        model: the model whose ``state_dict`` is saved.
        entry: what the manifest says of it (``config``, data, training, metrics);
            ``file`` and ``sha256`` are filled in here.
    """
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; expected one of {sorted(MODELS)}.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save({key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}, buffer)
    data = buffer.getvalue()
    file = f"{name}.pt"
    # Each file is written beside its target, then renamed: a crash leaves the old, consistent pair.
    write_atomic(folder / file, data)
    path = folder / "manifest.json"
    records = json.loads(path.read_text()) if path.exists() else {"models": {}}
    records["models"][name] = {"file": file, "sha256": hashlib.sha256(data).hexdigest(), **entry}
    write_json(path, records, indent=2)
