"""A learned starting point for the ARM: weights fitted offline, loaded before training.

Why: the ARM models statistics that barely depend on the image (a latent's spread given its
neighbours and its parent), yet from its default initialisation it needs hundreds of steps
to learn them, while the latents are already being trained against a poor rate model. On
Kodak crops, starting from an ARM fitted on another image gave 5-7 points of BD-rate at 300
steps (docs/lossy.md). The prior is only a starting point: the ARM is trained and stored in
every file as before, so the bitstream does not change and the decoder never reads this.

The prior ships as ``arm_prior.npy`` (594 float32 values: the three layers' weights and
biases, nn.Linear layout, concatenated). ``scripts/train_arm_prior.py`` regenerates it from
crops of the CLIC 2025 validation photographs, a set the lossy benchmarks do not use.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PRIOR_PATH = Path(__file__).with_name("arm_prior.npy")


def arm_vector(arm) -> np.ndarray:
    """The ARM's parameters (an iterable of nn.Linear) as one float32 vector."""
    return np.concatenate(
        [t.detach().cpu().numpy().ravel() for layer in arm for t in (layer.weight, layer.bias)]
    ).astype(np.float32)


def set_arm(arm, vec: np.ndarray) -> bool:
    """Copy a vector made by :func:`arm_vector` into ``arm`` (nn.Linear layers) when the
    sizes match; returns whether it did.

    >>> import torch
    >>> a = [torch.nn.Linear(3, 2), torch.nn.Linear(2, 1)]
    >>> b = [torch.nn.Linear(3, 2), torch.nn.Linear(2, 1)]
    >>> set_arm(b, arm_vector(a)), bool(torch.equal(a[1].weight, b[1].weight))
    (True, True)
    >>> set_arm(b, np.zeros(5, np.float32))  # another architecture: left as it was
    False
    """
    import torch

    params = [t for layer in arm for t in (layer.weight, layer.bias)]
    if vec.shape != (sum(t.numel() for t in params),):
        return False
    with torch.no_grad():
        k = 0
        for t in params:
            n = t.numel()
            t.copy_(torch.from_numpy(np.ascontiguousarray(vec[k : k + n])).reshape(t.shape))
            k += n
    return True


def load_arm_prior(arm, path: Path = PRIOR_PATH) -> bool:
    """Start ``arm`` from the shipped prior when it exists and fits (a model with another ARM
    width keeps its default initialisation); returns whether it did."""
    if not path.exists():
        return False
    return set_arm(arm, np.load(path))
