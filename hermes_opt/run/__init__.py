"""Run a study's trials: the ask/tell driver, the process pool, what a worker does, progress
lines, and capacity mode.

``runner.run_study`` opens storage and the pool and hands both to ``driver.Driver`` (fixed-size
batches told in trial order, so results do not depend on the worker count); ``pool`` is the loky
executor; ``worker`` composes, checks feasibility and simulates one (trial, replicate);
``preflight`` resolves the evaluator and checks the base scenario; ``progress`` prints one line
per batch; ``capacity`` bisects the highest arrival rate a deployment serves within its SLOs.

May import: ``sim``, ``hermes_opt.compose``, ``hermes_opt.study`` and this folder.
"""
