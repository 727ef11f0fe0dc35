"""Activation magnitude: how strongly a unit fires on the reference set."""

import torch

from bench.api import Method, capture, per_channel


class Activation(Method):
    name = "activation"
    family = "activation"
    description = ("Mean over images and positions of |a| per channel, a = the site's own output "
                   "(conv output before its BatchNorm; linear output before its activation); a "
                   "head: mean |a| of its output (its slice of the attention projection's input)")
    reference = ("Hu et al. 2016, Network Trimming: A Data-Driven Neuron Pruning Approach, "
                 "arXiv:1607.03250")
    version = "1"
    granularities = ("channel", "head")
    effect_based = False  # a unit nobody downstream reads can still fire strongly

    def score(self, model, sites, batch):
        totals = {site.name: torch.zeros(site.shape, device=site.weight.device) for site in sites}
        count = {site.name: 0 for site in sites}
        with torch.no_grad(), capture(model, sites) as cap:
            for chunk in batch.chunks(64):
                model(chunk.x)
                for site in sites:
                    out = cap.outputs[site.name]
                    totals[site.name] += per_channel(out.abs())
                    count[site.name] += out.numel() // out.shape[1]
        return {name: total / count[name] for name, total in totals.items()}
