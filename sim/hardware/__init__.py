"""Device and model shapes (``specs``: FLOPS, bandwidths, memory, layers, heads, dtypes) and the
memory rules that decide whether a model fits and how many KV blocks a replica has (``memory``).

May import: ``sim.errors`` and this folder.
"""
