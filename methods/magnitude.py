"""Weight magnitude: the classic data-free pruning criterion."""

from bench.api import Method


class Magnitude(Method):
    name = "magnitude"
    family = "magnitude"
    description = "L1 norm of each output channel's / neuron's weights; |w| per weight"
    reference = "Li et al. 2017, Pruning Filters for Efficient ConvNets, arXiv:1608.08710"
    version = "1"
    needs_data = False

    def score(self, model, sites, batch):
        scores = {}
        for site in sites:
            weight = site.weight.detach().abs()
            scores[site.name] = weight.flatten(1).sum(1) if site.granularity == "channel" else weight
        return scores
