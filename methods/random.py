"""Random scores: the floor every attribution method has to beat."""

import torch

from bench.api import Method


class Random(Method):
    name = "random"
    family = "random"
    description = ("Uniform random score per unit (channel, weight or attention head), seeded by "
                   "the cell's seed")
    reference = "Blalock et al. 2020, What is the State of Neural Network Pruning? (random baseline)"
    version = "1"
    granularities = ("channel", "weight", "head")
    needs_data = False

    def score(self, model, sites, batch):
        # The engine seeds torch before score(); draw in site order for determinism.
        return {site.name: torch.rand(site.shape) for site in sites}
