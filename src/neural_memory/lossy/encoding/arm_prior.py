"""A learned starting point for the ARM: weights fitted offline, loaded before training.

Why: the ARM models statistics that barely depend on the image (a latent's spread given its
neighbours and its parent), yet from its default initialisation it needs hundreds of steps
to learn them, while the latents are already being trained against a poor rate model. On
Kodak crops, starting from an ARM fitted on another image gave 5-7 points of BD-rate at 300
steps (docs/lossy.md). The prior is only a starting point: the ARM is trained and stored in
every file as before, so the bitstream does not change and the decoder never reads this.

The prior ships as ``arm_prior.npy`` (594 float32 values: the three layers' weights and
biases, nn.Linear layout, concatenated; 16 hidden units). ``scripts/train_arm_prior.py``
regenerates it from crops of the CLIC 2025 validation photographs, a set the lossy benchmarks
do not use. A wider ARM starts from it embedded; a prior of another width can ship beside it
(``arm_prior_<width>.npy``, ``--width``), but a 24-unit one, though it coded the first
latents 6-15 % smaller, gave 0.7-1.0 % larger files after 2500 steps (docs/lossy.md,
session 10), so none does.
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


def embed_arm(arm, vec: np.ndarray, width: int) -> bool:
    """Copy a prior of hidden width ``width`` (three nn.Linear layers) into the top-left
    corner of a wider ``arm``; the extra hidden units keep their random input weights but
    their outgoing weights are zeroed, so the wider ARM computes exactly what the prior does
    and its gradients still reach every new weight. Returns whether it did.

    >>> import torch
    >>> small = [torch.nn.Linear(3, 2), torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)]
    >>> big = [torch.nn.Linear(3, 4), torch.nn.Linear(4, 4), torch.nn.Linear(4, 2)]
    >>> embed_arm(big, arm_vector(small), 2)
    True
    >>> x = torch.randn(5, 3)
    >>> def run(net):
    ...     return net[2](torch.relu(net[1](torch.relu(net[0](x)))))
    >>> bool(torch.allclose(run(small), run(big)))
    True
    """
    import torch

    l0, l1, l2 = arm
    n_ctx, a = l0.in_features, l0.out_features
    n_out = l2.out_features
    shapes = [(width, n_ctx), (width,), (width, width), (width,), (n_out, width), (n_out,)]
    if a < width or vec.shape != (sum(int(np.prod(s)) for s in shapes),):
        return False
    parts, k = [], 0
    for s in shapes:
        n = int(np.prod(s))
        parts.append(torch.from_numpy(np.ascontiguousarray(vec[k : k + n])).reshape(s))
        k += n
    w0, b0, w1, b1, w2, b2 = parts
    with torch.no_grad():
        l0.weight[:width] = w0
        l0.bias[:width] = b0
        l1.weight[:, width:] = 0.0  # new first-layer units do not reach the second layer
        l1.weight[:width, :width] = w1
        l1.bias[:width] = b1
        l2.weight.zero_()  # nor do new second-layer units reach the output
        l2.weight[:, :width] = w2
        l2.bias.copy_(b2)
    return True


#: hidden width of the first shipped prior (``arm_prior.npy``); wider ones may ship beside it
#: as ``arm_prior_<width>.npy`` (:func:`prior_path`)
PRIOR_WIDTH = 16


def prior_path(width: int) -> Path:
    """Where the prior of ARM hidden width ``width`` ships (it may not exist)."""
    return PRIOR_PATH if width == PRIOR_WIDTH else PRIOR_PATH.with_name(f"arm_prior_{width}.npy")


def shipped_widths() -> list[int]:
    """Hidden widths of the priors that ship, narrowest first."""
    found = [PRIOR_WIDTH] if PRIOR_PATH.exists() else []
    for f in PRIOR_PATH.parent.glob("arm_prior_*.npy"):
        suffix = f.stem.removeprefix("arm_prior_")
        if suffix.isdigit():
            found.append(int(suffix))
    return sorted(set(found))


def load_arm_prior(arm) -> bool:
    """Start ``arm`` from the shipped prior of its width, or else from the widest narrower one
    embedded (:func:`embed_arm`); an ARM narrower than every prior keeps its default
    initialisation. Returns whether a prior was loaded."""
    width = arm[0].out_features
    for w in reversed(shipped_widths()):
        if w == width:
            return set_arm(arm, np.load(prior_path(w)))
        if w < width:
            return embed_arm(arm, np.load(prior_path(w)), w)
    return False
