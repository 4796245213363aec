"""Optimisers for per-image training: plain Adam, and SOAP (Adam in the eigenbasis of a
Shampoo preconditioner) for the small network matrices.

Why our own: ``torch.optim``'s first step imports ``torch._dynamo`` (6-8 s on this machine,
a large share of a 120 s encode), and SOAP is not in torch. Both work on parameter groups
(``{"params": [...], "lr": float}``) and read ``p.grad`` like ``torch.optim`` does, so the
training loop can change ``g["lr"]`` between steps.

>>> import torch
>>> w = torch.nn.Parameter(torch.ones(3, 2))
>>> opt = Soap([{"params": [w], "lr": 0.1}])
>>> for _ in range(3):
...     w.grad = 2 * w.detach()  # gradient of sum(w**2)
...     opt.step()
>>> bool((w.detach().abs() < 1).all())  # the first call only sets up the preconditioner
True
"""

from __future__ import annotations

import torch

from neural_memory.torch_threads import torch_threads


class Adam:
    """Plain Adam over parameter groups (the update rule of ``torch.optim.Adam``)."""

    def __init__(self, groups: list[dict], betas=(0.9, 0.999), eps: float = 1e-8):
        self.param_groups = groups
        self.b1, self.b2, self.eps = betas[0], betas[1], eps
        self.t = 0
        self.m = [[torch.zeros_like(p) for p in g["params"]] for g in groups]
        self.v = [[torch.zeros_like(p) for p in g["params"]] for g in groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                p.grad = None

    @torch.no_grad()
    def step(self, grads: list[list[tuple]] | None = None) -> None:
        """One update. ``grads`` (per group, per parameter; optional) gives each gradient as
        ``(g1, d1, g2, d2)``, meaning ``g1 * d1 + g2 * d2`` (``d1`` or the second pair None
        when absent), instead of ``p.grad``: the training step's latent gradients come as the
        rate's and the distortion's, each times its proxy's derivative, and on CPU float32
        the product and the update run in one C pass (train_kernels.adam_c)."""
        self.t += 1
        c1 = 1 - self.b1**self.t
        c2 = 1 - self.b2**self.t
        for k, (g, ms, vs) in enumerate(zip(self.param_groups, self.m, self.v, strict=True)):
            for j, (p, m, v) in enumerate(zip(g["params"], ms, vs, strict=True)):
                parts = None if grads is None else grads[k][j]
                if parts is not None and self._native(p, m, v, parts, g["lr"] / c1, c2):
                    continue
                grad = p.grad if parts is None else _combine(parts)
                if grad is None:
                    continue
                m.mul_(self.b1).add_(grad, alpha=1 - self.b1)
                v.mul_(self.b2).addcmul_(grad, grad, value=1 - self.b2)
                denom = (v / c2).sqrt_().add_(self.eps)
                p.addcdiv_(m, denom, value=-g["lr"] / c1)

    def _native(self, p, m, v, parts, step: float, c2: float) -> bool:
        tensors = [p, m, v, *(t for t in parts if t is not None)]
        if not all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors):
            return False
        if not all(t.is_contiguous() for t in tensors):
            return False
        from neural_memory.lossy.encoding import train_kernels as tk

        arrays = [None if t is None else t.numpy() for t in parts]
        return tk.adam_c(
            p.detach().numpy(), m.numpy(), v.numpy(), tuple(arrays), step, (self.b1, self.b2),
            c2, self.eps,
        )  # fmt: skip


def _combine(parts: tuple) -> torch.Tensor:
    """``g1 * d1 + g2 * d2`` of a gradient given in parts (see Adam.step)."""
    g1, d1, g2, d2 = parts
    grad = g1 if d1 is None else g1 * d1
    return grad if g2 is None else grad + g2 * d2


class _SoapState:
    """Per-matrix state: Adam moments in the rotated basis, the two Shampoo statistics
    (left ``G G^T``, right ``G^T G``) and their eigenbases."""

    def __init__(self, p: torch.Tensor):
        out_dim, in_dim = p.shape
        self.t = 0
        self.m = torch.zeros_like(p)
        self.v = torch.zeros_like(p)
        self.left = torch.zeros(out_dim, out_dim, dtype=torch.float64)
        self.right = torch.zeros(in_dim, in_dim, dtype=torch.float64)
        self.q_left: torch.Tensor | None = None
        self.q_right: torch.Tensor | None = None


class Soap:
    """SOAP (Vyas et al. 2024, arXiv 2409.11321): Adam run in the eigenbasis of Shampoo's
    preconditioner, refreshed every ``precondition_every`` steps by one power iteration and a
    QR. Matrices (2-D tensors) are preconditioned on both sides; vectors (biases) get Adam.

    Why for our networks: the synthesis and ARM are small (17x24, 24x3, 17x16, ...) but badly
    conditioned (inputs from 17 grids of very different energies), and Cool-chic 5 reports
    reaching a better result in 10x fewer steps than 4.2's Adam with it among other changes.
    The statistics are kept in float64 (the matrices are tiny, so this costs nothing and keeps
    the eigenbases of nearly singular statistics stable).

    Defaults follow Cool-chic 5's network optimiser: betas (0.95, 0.95), Shampoo beta 0.95,
    refresh every 10 steps, decoupled weight decay 0 here (our synthesis starts at an exact
    analytic solution that decay would pull away from).
    """

    def __init__(
        self,
        groups: list[dict],
        betas: tuple[float, float] = (0.95, 0.95),
        shampoo_beta: float = 0.95,
        eps: float = 1e-8,
        precondition_every: int = 10,
        weight_decay: float = 0.0,
    ):
        self.param_groups = groups
        self.b1, self.b2 = betas
        self.shampoo_beta = shampoo_beta
        self.eps = eps
        self.every = precondition_every
        self.weight_decay = weight_decay
        self.state: dict[int, _SoapState] = {}
        self._vec_state: dict[int, tuple[torch.Tensor, torch.Tensor, list[int]]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        # one thread: the bytes must not depend on the thread count (torch_threads.py), and
        # the matrices are at most 64 x 64
        with torch_threads(1):
            self._step()

    def _step(self) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                if p.dim() == 2:
                    self._matrix_step(p, g["lr"])
                else:
                    self._vector_step(p, g["lr"])
                if self.weight_decay:
                    p.mul_(1 - g["lr"] * self.weight_decay)

    def _vector_step(self, p: torch.Tensor, lr: float) -> None:
        m, v, t = self._vec_state.setdefault(id(p), (torch.zeros_like(p), torch.zeros_like(p), [0]))
        t[0] += 1
        m.mul_(self.b1).add_(p.grad, alpha=1 - self.b1)
        v.mul_(self.b2).addcmul_(p.grad, p.grad, value=1 - self.b2)
        denom = (v / (1 - self.b2 ** t[0])).sqrt_().add_(self.eps)
        p.addcdiv_(m, denom, value=-lr / (1 - self.b1 ** t[0]))

    def _accumulate(self, s: _SoapState, grad: torch.Tensor) -> None:
        beta = self.shampoo_beta
        s.left.mul_(beta).add_(grad @ grad.T, alpha=1 - beta)
        s.right.mul_(beta).add_(grad.T @ grad, alpha=1 - beta)

    def _matrix_step(self, p: torch.Tensor, lr: float) -> None:
        s = self.state.get(id(p))
        grad = p.grad.double()
        if s is None:  # first call: statistics and eigenbases only, no update
            s = self.state[id(p)] = _SoapState(p)
            self._accumulate(s, grad)
            s.q_left = _eigenbasis(s.left)
            s.q_right = _eigenbasis(s.right)
            return
        ql, qr = s.q_left, s.q_right
        rotated = (ql.T @ grad @ qr).to(p.dtype)
        s.t += 1
        s.m.mul_(self.b1).add_(rotated, alpha=1 - self.b1)
        s.v.mul_(self.b2).addcmul_(rotated, rotated, value=1 - self.b2)
        alpha = lr * (1 - self.b2**s.t) ** 0.5 / (1 - self.b1**s.t)
        normalised = (s.m / (s.v.sqrt() + self.eps)).double()
        p.add_((ql @ normalised @ qr.T).to(p.dtype), alpha=-alpha)
        # the statistics move on; every `every` steps the bases follow them, and the moments
        # are carried into the new basis (the second moment only reordered, as in SOAP)
        self._accumulate(s, grad)
        if s.t % self.every == 0:
            m_plain = ql @ s.m.double() @ qr.T
            s.q_left, perm_l = _refresh(s.left, ql)
            s.q_right, perm_r = _refresh(s.right, qr)
            s.v = s.v[perm_l][:, perm_r].contiguous()
            s.m = (s.q_left.T @ m_plain @ s.q_right).to(p.dtype)


def _eigenbasis(stat: torch.Tensor) -> torch.Tensor:
    """Eigenvectors of a symmetric statistic, columns by decreasing eigenvalue."""
    eye = torch.eye(stat.shape[0], dtype=stat.dtype)
    _, vecs = torch.linalg.eigh(stat + 1e-30 * eye)
    return vecs.flip(1).contiguous()


def _refresh(stat: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One power iteration from the current basis, then QR (cheaper and smoother than a
    fresh eigendecomposition); returns the new basis and the permutation applied to the old
    basis' columns (by the decreasing Rayleigh quotients), which the second moment follows."""
    est = torch.diagonal(q.T @ stat @ q)
    order = torch.argsort(est, descending=True, stable=True)
    q = q[:, order]
    q_new, _ = torch.linalg.qr(stat @ q)
    return q_new, order
