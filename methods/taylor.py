"""First-order Taylor expansion of the loss (Molchanov et al.)."""

import torch

from bench.api import Method, capture


class Taylor(Method):
    name = "taylor"
    family = "taylor"
    description = ("Channel: mean over images of |mean over positions of a*dL/da| at the layer "
                   "output; weight: |w * dL/dw| with dL/dw summed over the reference set; a head: "
                   "as a channel, at its output (its slice of the attention projection's input; "
                   "Michel et al. 2019's head importance)")
    reference = ("Molchanov et al. 2017, Pruning Convolutional Neural Networks for Resource "
                 "Efficient Inference, arXiv:1611.06440")
    version = "1"
    granularities = ("channel", "weight", "head")
    needs_grad = True

    def score(self, model, sites, batch):
        totals = {site.name: torch.zeros(site.shape, device=site.weight.device) for site in sites}
        with capture(model, sites) as cap:
            for chunk in batch.chunks(64):
                model.zero_grad(set_to_none=False)
                # Sum of per-image losses: a*g below is then per image, dL/dw a sum over images.
                chunk.loss(model(chunk.x)).mul(len(chunk)).backward()
                for site in sites:
                    if site.granularity != "weight":
                        a, g = cap.outputs[site.name].detach(), cap.grad(site.name)
                        prod = (a * g).flatten(2).mean(2) if a.ndim > 2 else a * g
                        totals[site.name] += prod.abs().sum(0) / len(batch)
                    else:
                        totals[site.name] += site.weight.grad.detach()
        return {site.name: totals[site.name] if site.granularity != "weight"
                else (site.weight.detach() * totals[site.name]).abs() for site in sites}
