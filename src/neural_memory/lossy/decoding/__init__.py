"""Lossy decoding half (NumPy and numba only, never PyTorch): the payload's bitstream layout
(``bitstream``), the integer ARM and coding order (``arm``), fixed-point upsampling and
synthesis (``fixed_point``) and the decoder that puts them together (``decoder``)."""
