"""Weight magnitude: the classic data-free pruning criterion."""

from bench.api import Method


class Magnitude(Method):
    name = "magnitude"
    family = "magnitude"
    description = ("L1 norm of each output channel's / neuron's weights; |w| per weight; a head: "
                   "L1 norm of its q, k and v rows of the qkv projection")
    reference = "Li et al. 2017, Pruning Filters for Efficient ConvNets, arXiv:1608.08710"
    version = "1"
    granularities = ("channel", "weight", "head")
    needs_data = False

    def score(self, model, sites, batch):
        scores = {}
        for site in sites:
            weight = site.weight.detach().abs()
            scores[site.name] = weight if site.granularity == "weight" else weight.flatten(1).sum(1)
        return scores
