"""Calibration: fit the roofline cost model's free parameters to measurements.

Reading guide: ``observations`` (readers for Splitwise, Vidur, serving tables and a user's steps
CSV) -> ``splits`` (fit vs held-out rows) -> ``fit`` (least squares; simulator-in-the-loop for
serving rows via ``serving``) -> ``calibrate`` (one profile, written as YAML to conf/calibration
through ``hermes_opt.compose.calibration_profile``); ``recipes`` are the shipped profiles' exact
commands; ``hermes-sim calibrate`` is ``hermes_opt.cli.calibrate_command``. See
docs/validation.md.

May import: ``sim``, ``hermes_opt.compose`` and this folder.
"""
