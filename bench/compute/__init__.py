"""What a worker computes: data, models, baselines, training, sites, scoring, pruning, recovery,
measurement (evaluate, transparency, explain), soundness, devices and the on-disk cache.

``runner`` is the cell's protocol top to bottom; every other module owns one step of it.
"""
