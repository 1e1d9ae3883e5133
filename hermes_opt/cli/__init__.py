"""Entry points only: parse arguments, call the stage that does the work, print, exit.

``sim_command`` is ``hermes-sim`` (a Hydra app, plus ``calibrate`` and ``validate``
subcommands), ``opt_command`` is ``hermes-opt``; ``common`` holds the one-line usage errors
(exit status 2) that every command shares.

May import: anything in ``hermes_opt`` and ``sim``; nothing imports this folder.
"""
