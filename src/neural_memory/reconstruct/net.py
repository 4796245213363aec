"""The refinement network of the inpainter: a small dilated CNN (PyTorch).

Input: masked image, known-pixel mask and the two smooth fills; output: one fill plus a
learned correction, with the known pixels put back. Dilations 1..16 give a receptive field of
about 65 pixels, enough to see both sides of a 64-pixel hole, at the cost of a plain 3x3 CNN.
The last layer starts at zero, so training starts exactly from the coarse fill and can only
move away from it where that lowers the error on held-out known pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

DILATIONS = (1, 2, 4, 8, 16, 1)


class RefineNet(nn.Module):
    def __init__(self, channels: int, width: int = 32):
        super().__init__()
        layers = []
        c_in = 3 * channels + 1
        for d in DILATIONS:
            layers.append(nn.Conv2d(c_in, width, 3, padding=d, dilation=d, padding_mode="reflect"))
            c_in = width
        self.body = nn.ModuleList(layers)
        self.head = nn.Conv2d(width, channels, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(
        self,
        img: torch.Tensor,
        known: torch.Tensor,
        coarse: torch.Tensor,
        other: torch.Tensor,
    ) -> torch.Tensor:
        """``coarse``: the fill the output corrects; ``other``: the second smooth fill."""
        x = torch.cat([(img - 0.5) * known, known, coarse - 0.5, other - 0.5], dim=1)
        for i, layer in enumerate(self.body):
            y = F.leaky_relu(layer(x), 0.1)
            x = y if i == 0 or y.shape != x.shape else x + y
        out = coarse + self.head(x)
        return img * known + out * (1 - known)
