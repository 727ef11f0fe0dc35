"""An XPrune Bench method plugin shipped as its own package (entry point ``xprune.methods``)."""

from bench.api import Method


class L2Norm(Method):
    name = "example-l2"
    family = "magnitude"
    description = "L2 norm of each output channel's / neuron's weights; w^2 per weight"
    reference = "Li et al. 2017, Pruning Filters for Efficient ConvNets, arXiv:1608.08710"
    version = "1"
    needs_data = False

    def score(self, model, sites, batch):
        scores = {}
        for site in sites:
            w = site.weight.detach()
            scores[site.name] = w.flatten(1).norm(dim=1) if site.granularity == "channel" else w**2
        return scores
