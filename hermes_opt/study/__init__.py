"""Define a study: what is searched and how it is judged and stored.

``definition`` (studies/<name>.yaml -> ``StudySpec``), ``space`` (parameters named by their
``hermes-sim`` override path, conditional keys), ``objective`` (objectives, SLO constraints,
budget, replicate scoring), ``pareto`` (fronts and hypervolume), ``storage`` (SQLite / PostgreSQL,
heartbeats, the single-driver lock), ``sampling`` (samplers re-seeded per batch, the stored
definition checked on resume, which trials count).

May import: ``sim``, ``hermes_opt.compose`` (catalog names) and this folder.
"""
