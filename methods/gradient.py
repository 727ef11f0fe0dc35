"""Gradient criterion: how much the loss reacts to a unit's output, in mean."""

import torch

from bench.api import Method, capture, per_channel


class Gradient(Method):
    name = "gradient"
    family = "gradient"
    description = ("|mean over images and positions of dL/da| per channel at the site output, "
                   "L = sum over images of each image's task loss (so dL/da is per image); a head: "
                   "the same at its output (its slice of the attention projection's input)")
    reference = ("Molchanov et al. 2017, Pruning Convolutional Neural Networks for Resource "
                 "Efficient Inference, arXiv:1611.06440 (gradient baseline)")
    version = "1"
    granularities = ("channel", "head")
    needs_grad = True

    def score(self, model, sites, batch):
        totals = {site.name: torch.zeros(site.shape, device=site.weight.device) for site in sites}
        count = {site.name: 0 for site in sites}
        with capture(model, sites) as cap:
            for chunk in batch.chunks(64):
                chunk.loss(model(chunk.x)).mul(len(chunk)).backward()
                for site in sites:
                    grad = cap.grad(site.name)
                    totals[site.name] += per_channel(grad)
                    count[site.name] += grad.numel() // grad.shape[1]
        return {name: (total / count[name]).abs() for name, total in totals.items()}
