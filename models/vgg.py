"""VGG16's convolutional stack in torchvision's layer order, so torchvision's ImageNet file loads into it.

Only the feature stack is defined (``features.N`` keys); the classifier is never needed here.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from blur2blur.errors import UserError

# torchvision's VGG16 ("D"): channels per conv, "M" a 2x2 max-pool.
LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
WEIGHTS_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
CACHED = Path.home() / ".cache" / "torch" / "hub" / "checkpoints" / "vgg16-397923af.pth"


def vgg16_features() -> nn.Sequential:
    """conv3x3-ReLU blocks and max-pools, indexed as torchvision's ``vgg16().features`` (31 modules)."""
    layers: list[nn.Module] = []
    channels = 3
    for item in LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU(inplace=True)]
            channels = item
    return nn.Sequential(*layers)


def load_vgg16_features(path: str | Path | None = None) -> nn.Sequential:
    """The feature stack with torchvision's ImageNet weights from `path` (default: torchvision's cache file).

    The file is torchvision's ``vgg16-397923af.pth`` (a plain state dict, loaded with weights_only=True).
    """
    path = Path(path) if path else CACHED
    if not path.is_file():
        raise UserError(f"--vgg-weights {path}: no such file; download torchvision's VGG16 weights from "
                        f"{WEIGHTS_URL} (or use the offline default --perceptual filters)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise UserError(f"--vgg-weights {path}: not a readable PyTorch file ({str(err).splitlines()[0]})") from None
    features = vgg16_features()
    wanted = {f"features.{k}": v for k, v in features.state_dict().items()}
    found = {k: v for k, v in state.items() if k in wanted} if isinstance(state, dict) else {}
    if set(found) != set(wanted) or any(found[k].shape != v.shape for k, v in wanted.items()):
        raise UserError(f"--vgg-weights {path}: not torchvision's VGG16 (expected features.0.weight ... "
                        f"features.28.bias); download {WEIGHTS_URL}")
    features.load_state_dict({k.removeprefix("features."): v for k, v in found.items()})
    return features
