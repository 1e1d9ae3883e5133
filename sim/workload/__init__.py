"""Request arrivals (Poisson, gamma, max load, closed loop, trace replay) and length
distributions: the specs (``spec``) and the generator that draws them from named random streams
(``generator``).

May import: ``sim.config``, ``sim.errors``, ``sim.random_streams`` and this folder.
"""
