"""Lossy decoding half (never PyTorch; decoding runs in the C core, the numba kernels here are
its bit-exact reference): the payload's bitstream layout
(``bitstream``), the integer ARM and coding order (``arm``), fixed-point upsampling and
synthesis (``fixed_point``) and the decoder that puts them together (``decoder``)."""
