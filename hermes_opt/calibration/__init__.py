"""Calibration: fit the roofline cost model's free parameters to measurements.

Reading guide: ``observations`` (readers for Splitwise, Vidur, serving tables and a user's steps
CSV) -> ``splits`` (fit vs held-out rows) -> ``fit`` (least squares; simulator-in-the-loop for
serving rows via ``serving``) -> ``calibrate`` (one profile) -> ``profile`` (YAML in
conf/calibration) -> ``cli`` (``hermes-sim calibrate``); ``recipes`` are the shipped profiles'
exact commands. See docs/validation.md.
"""
