"""BatchNorm scale: the learned gain of the normalisation applied to each channel."""

from bench.api import Method
from bench.attribution import consuming_batchnorms


class BNScale(Method):
    name = "bn-scale"
    family = "bn-scale"
    description = ("|gamma| of the BatchNorm fed directly by the site's output (found by tracing "
                   "with torch.fx); sites with none (hidden Linear layers) fall back to the L1 "
                   "norm of the unit's weights, as in magnitude")
    reference = ("Liu et al. 2017, Learning Efficient Convolutional Networks through Network "
                 "Slimming, arXiv:1708.06519")
    version = "1"
    granularities = ("channel",)
    architectures = ("cnn",)  # a transformer has no BatchNorm
    needs_data = False

    def score(self, model, sites, batch):
        bns = consuming_batchnorms(model, sites)
        return {site.name: (bns[site.name].weight if site.name in bns
                            else site.weight.flatten(1).abs().sum(1)).detach().abs().clone()
                for site in sites}
