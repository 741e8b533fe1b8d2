"""lfmsim reconstruction: light-field operators (forward/adjoint) and deconvolution on GPU or CPU."""
