"""AttnLRP for transformers (lxt): relevance of MLP neurons and attention heads, as PXP prunes
Vision Transformers (Hatefi et al. 2024). CNN backbones are for the zennit LRP plugins."""

from bench.api import Method
from bench.attribution import attnlrp_relevance


class LRPAttn(Method):
    name = "lrp-attn"
    family = "lrp"
    description = ("AttnLRP through lxt's efficient rules (Gradient x Input): identity rule on "
                   "LayerNorm (std detached) and GELU, uniform rule on the attention products "
                   "(q and k relevance /4, v /2), softmax, linear layers and the patch embedding "
                   "by their gradient; one-hot true-class seed; R = a * dF/da at the site's "
                   "output; channel (MLP hidden neuron) and head: sum over images of |sum over "
                   "tokens (and the head's dimensions) of R|")
    reference = ("Achtibat et al. 2024, AttnLRP: Attention-Aware Layer-Wise Relevance "
                 "Propagation for Transformers, ICML 2024, arXiv:2402.05602; Hatefi et al. 2024, "
                 "Pruning By Explaining Revisited, arXiv:2408.12568")
    version = "1"
    granularities = ("channel", "head")
    architectures = ("transformer",)
    needs_grad = True

    def score(self, model, sites, batch):
        return {name: r.abs().sum(0) for name, r in attnlrp_relevance(model, sites, batch).items()}
