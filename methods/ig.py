"""Integrated Gradients: layer conductance for channels, joint weight-path IG for weights."""

from bench.api import Method
from bench.attribution import conductance, weight_ig


class IntegratedGradients(Method):
    """Weights: IG of F with every site weight scaled jointly from 0 (W(beta) = beta*W).

    Declared because it is the weight-space analogue of input IG with a real completeness
    property (all weight IGs add up to F(W) - F(0 site weights), tested), at the price of a
    second path of ``steps + 1`` forward+backward passes; per-image |.| is not affordable there,
    so the weight score is |IG| of F summed over the reference set.
    """

    name = "ig"
    family = "ig"
    description = ("Zero baseline, F = sum of true-class logits, one straight input path with "
                   "steps+1 trapezoid points for all sites; channel: sum over images of |sum over "
                   "positions of conductance| (a*dF/da integrated along the path, abs after the "
                   "spatial sum); weight: |W * integral over beta in [0,1] of dF/dW at beta*W| "
                   "(all site weights scaled jointly); a head: as a channel, conductance at its "
                   "output (its slice of the attention projection's input)")
    reference = ("Sundararajan et al. 2017, Axiomatic Attribution for Deep Networks, "
                 "arXiv:1703.01365; Dhamdhere et al. 2018, How Important Is a Neuron?, "
                 "arXiv:1805.12233")
    version = "1"
    granularities = ("channel", "weight", "head")
    needs_grad = True
    steps = 32

    def score(self, model, sites, batch):
        channel = [site for site in sites if site.granularity != "weight"]
        weight = [site for site in sites if site.granularity == "weight"]
        scores = {}
        if channel:
            cond = conductance(model, channel, batch, self.steps).channel
            scores.update({name: c.abs().sum(0) for name, c in cond.items()})
        if weight:
            scores.update({k: v.abs() for k, v in weight_ig(model, weight, batch, self.steps).items()})
        return scores
