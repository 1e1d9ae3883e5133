"""What a run records and how it is summarised: per-replica records and compact per-request
columns folded as the run goes (``collector``), a relative-accuracy quantile sketch for
distributions too large to keep exactly (``sketch``), per-stage breakdowns (``stages``), and the
summary with percentiles, goodput under the SLO and utilisation (``summary``).

May import: ``sim.config``, ``sim.request`` and this folder.
"""
