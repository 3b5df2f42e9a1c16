"""Calibration of the analytical GPU model: microbenchmarks (microbench.py, needs torch and
a CUDA GPU), the fit of the model's parameters to a measurement CSV (fit.py), and the
calibration-file format (params.py)."""
