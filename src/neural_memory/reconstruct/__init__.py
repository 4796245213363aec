"""Reconstruction of missing and unseen pixels (issue 5).

- :func:`inpaint`: fill masked pixels with a network fitted to the known ones (inpainting.py);
- :func:`run_memory_demo`: a small photo stored in the lossy codec's network and rebuilt from
  it alone (memory_demo.py);
- masks.py: the benchmark's seeded masks and validation of user masks;
- command.py: ``neural-memory inpaint`` (wired into the main CLI by cli.py of the package).

PyTorch is imported only when a fit actually runs.
"""

from __future__ import annotations

from neural_memory.reconstruct.inpainting import InpaintConfig, inpaint

__all__ = ["InpaintConfig", "inpaint", "run_memory_demo"]


def run_memory_demo(outdir, **options):
    """See :func:`neural_memory.reconstruct.memory_demo.run_memory_demo`."""
    from neural_memory.reconstruct.memory_demo import run_memory_demo as run

    return run(outdir, **options)
