"""Layer-wise relevance propagation criteria (zennit), as used for pruning by Yeom et al. 2021."""

import torch

from bench.api import Method
from bench.attribution.lrp import composite_for, relevance

YEOM = ("Yeom et al. 2021, Pruning by Explaining: A Novel Criterion for Deep Neural Network "
        "Pruning, Pattern Recognition 115:107899, doi:10.1016/j.patcog.2021.107899, arXiv:1912.08881")


class LRP(Method):
    """Seed 1 at each image's true class (one-hot), relevance read at each site's output."""

    family = "lrp"
    version = "1"
    granularities = ("channel", "weight")
    needs_grad = True
    preset = ""          # a bench.attribution.lrp.COMPOSITES key
    reduce = "sum"       # a bench.attribution.lrp.REDUCTIONS key
    weight_abs = False   # |sum| instead of the signed sum of weight relevance

    def score(self, model, sites, batch):
        rel = relevance(model, sites, batch, composite_for(model, self.preset), reduce=self.reduce,
                        weights=any(site.granularity == "weight" for site in sites))
        post = torch.abs if self.weight_abs else torch.clone
        return {site.name: rel.channel[site.name] if site.granularity == "channel"
                else post(rel.weight[site.name]) for site in sites}


class LRPEpsilon(LRP):
    """Convs get z+ (= alpha1-beta0), so channel maps equal lrp-alphabeta's; the aggregation differs.

    The first layer's flat rule spreads relevance uniformly over its weights, so first-layer
    weight scores are constant within an output channel.
    """

    name = "lrp-epsilon"
    description = ("zennit EpsilonPlusFlat (flat on the first layer, z+ on other convs, epsilon 1e-6 "
                   "on linears, BN merged), one-hot true-class seed; channel: sum over images of "
                   "|sum over positions of R| (abs after the spatial sum); weight: |sum over images "
                   "and positions of a_i*w_ji*R_j/z_j under the rule|")
    reference = ("Hatefi et al. 2024, Pruning By Explaining Revisited, arXiv:2408.12568; "
                 "Anders et al. 2021 (zennit), arXiv:2106.13200")
    preset, reduce, weight_abs = "epsilon-plus-flat", "abs-per-image", True


class LRPZPlus(LRP):
    name = "lrp-zplus"
    description = ("z+ rule on every conv and linear (BN merged), one-hot true-class seed; channel: "
                   "signed sum over images and positions of R; weight: signed sum over images and "
                   "positions of a_i*w+_ji*R_j/z+_j (Yeom 2021 VGG criterion)")
    reference = YEOM
    preset, reduce = "zplus", "sum"


class LRPAlphaBeta(LRP):
    name = "lrp-alphabeta"
    description = ("alpha1-beta0 on convs, epsilon 1e-6 on linears and residual sums (BN merged), "
                   "one-hot true-class seed; channel: sum over images and positions of |R| (abs "
                   "before the sum); weight: |sum over images and positions of the rule's "
                   "a_i*w_ji*R_j/z_j| (Yeom 2021 ResNet criterion)")
    reference = YEOM
    preset, reduce, weight_abs = "alpha1-beta0", "abs", True
