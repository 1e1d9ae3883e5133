"""What a run records and how it is summarised: append-only per-replica and per-request records
(``collector``), per-stage breakdowns (``stages``), and the summary with percentiles, goodput
under the SLO and utilisation (``summary``).

May import: ``sim.config``, ``sim.request`` and this folder.
"""
