"""Lossy encoding half (PyTorch): the float model (``model``), its analytic start
(``analytic_init``), training (``train``, fused numba kernels in ``train_kernels``), the ARM
prior it starts from (``arm_prior``), quantisation of the trained model (``quantize``), the
presets (``presets``) and the encoder that writes the payload (``encoder``). It imports the
decoding half for the format it writes; the decoding half never imports this one.

Importing this package does not import PyTorch; its modules do."""
