"""Data: datasets.yaml, image I/O, MATLAB-compatible resize, protocol degradations."""
