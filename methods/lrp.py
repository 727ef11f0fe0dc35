"""Layer-wise relevance propagation criteria (zennit), as used for pruning by Yeom et al. 2021
and Hatefi et al. 2024 (PXP).

Weight criteria must give every weight a relevance: under z+ (and alpha1-beta0) a negative
weight's relevance is exactly 0, which ties about half of all weights at the minimum. So the
alpha1-beta0 preset is a channel criterion only; weight pruning uses the epsilon and gamma
rules with |R_w|. PXP (Hatefi et al. 2024) scores channels, neurons and attention heads and has
no weight criterion: the weight aggregation |R_w| (the absolute value taken after summing a
weight's relevance over images and positions, where PXP's channel convention takes it per
image) is this project's own extension, not PXP's. Yeom et al.'s VGG criterion (z+ on every layer,
signed sum) is not offered: z+ at the classifier gives every hidden neuron whose weights to
the seeded classes are all negative exactly zero relevance (20% of the live hidden neurons of
the soundness model), so it fails ``xprune check``'s soundness stage even as a channel
criterion.
"""

import torch

from bench.api import Method
from bench.attribution import composite_for, relevance

YEOM = ("Yeom et al. 2021, Pruning by Explaining: A Novel Criterion for Deep Neural Network "
        "Pruning, Pattern Recognition 115:107899, doi:10.1016/j.patcog.2021.107899, arXiv:1912.08881")
PXP = ("Hatefi et al. 2024, Pruning By Explaining Revisited: Optimizing Attribution Methods to Prune "
       "CNNs and Transformers, arXiv:2408.12568")
_WEIGHT = ("weight: |sum over images and positions of a_i*w_ji*R_j/z_j under the rule| (|R_w|, abs "
           "after the sum over images; this project's extension: PXP scores channels, neurons and "
           "heads and has no weight criterion)")


class LRP(Method):
    """Seed 1 at each image's true class (one-hot), relevance read at each site's output."""

    family = "lrp"
    version = "2"
    granularities = ("channel", "weight")
    architectures = ("cnn",)  # zennit's rules: conv/linear/BN/ReLU/pooling, no attention
    needs_grad = True
    preset = ""          # a bench.attribution.lrp.COMPOSITES key
    reduce = "abs-per-image"  # a bench.attribution.lrp.REDUCTIONS key

    def score(self, model, sites, batch):
        rel = relevance(model, sites, batch, composite_for(model, self.preset), reduce=self.reduce,
                        weights=any(site.granularity == "weight" for site in sites))
        return {site.name: rel.channel[site.name] if site.granularity == "channel"
                else torch.abs(rel.weight[site.name]) for site in sites}


class LRPEpsilon(LRP):
    name = "lrp-epsilon"
    description = ("epsilon rule (epsilon 1e-6) on every conv and linear, first layer included (BN "
                   "merged), one-hot true-class seed; channel: sum over images of |sum over positions "
                   f"of R| (abs after the spatial sum); {_WEIGHT}")
    reference = f"{PXP}; Bach et al. 2015, doi:10.1371/journal.pone.0130140"
    preset = "epsilon"


class LRPGamma(LRP):
    name = "lrp-gamma"
    description = ("generalised gamma rule (gamma 0.25, valid for signed inputs) on every conv, "
                   "epsilon 1e-6 on linears (BN merged), one-hot true-class seed; channel: sum over "
                   f"images of |sum over positions of R|; {_WEIGHT}")
    reference = f"{PXP}; Montavon et al. 2019, doi:10.1007/978-3-030-28954-6_10"
    preset = "gamma"


class LRPAlphaBeta(LRP):
    name = "lrp-alphabeta"
    description = ("alpha1-beta0 on convs, epsilon 1e-6 on linears and residual sums (BN merged), "
                   "one-hot true-class seed; channel: sum over images and positions of |R| (abs "
                   "before the sum; Yeom 2021 ResNet criterion). Channel only: alpha1-beta0 gives "
                   "every negative conv weight zero relevance")
    reference = YEOM
    granularities = ("channel",)
    preset, reduce = "alpha1-beta0", "abs"
