"""The validation study (``hermes-sim validate``, studies/validation.yaml).

``runner`` predicts every expressible measurement with the uncalibrated roofline and the matching
calibration profile, ``coverage`` counts what is in scope and why rows are not reproduced,
``report`` writes error tables (mean and tail), targets, plots and Markdown, ``study`` ties them
together; the command is ``hermes_opt.cli.validate_command``. See docs/validation.md.

May import: ``sim``, ``hermes_opt.compose``, ``hermes_opt.calibration`` and this folder.
"""
