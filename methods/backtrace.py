"""DL-Backtrace (Sankarapu et al. 2024): default and contrast modes, via bench.attribution."""

from bench.api import Method
from bench.attribution import backtrace_scores as scores

_RULES = ("Linear/Conv2d {dense}; MaxPool: a window's relevance to its maximum, ties split evenly "
          "(the official package's rule); AvgPool and global pool split uniformly; residual sum "
          "R/2 to each; BN/ReLU/Dropout identity; seed 1 at the predicted class")


class Backtrace(Method):
    name = "backtrace"
    family = "backtrace"
    description = (_RULES.format(dense="R_j|z_ij|/(P_j+N_j+|b_j|)") + ". Channel: relevance at "
                   "the output summed over positions and images (non-negative); weight: sum over "
                   "images and positions of the relevance R_{i<-j} it carries")
    reference = "Sankarapu et al. 2024, DLBacktrace, arXiv:2411.12643"
    version = "2"
    granularities = ("channel", "weight")
    architectures = ("cnn",)  # no attention, LayerNorm or GELU rules
    needs_grad = False
    mode = "default"

    def score(self, model, sites, batch):
        return scores(model, sites, batch, self.mode)


class BacktraceContrast(Backtrace):
    """Channel only: a weight on the non-dominant side of a unit carries min(R+, R-), which is
    exactly 0 whenever one stream is empty there (13.8% of the live weights of the soundness
    model's hidden Linear tie at 0), so as a weight criterion it is degenerate."""

    name = "backtrace-contrast"
    mode = "contrast"
    granularities = ("channel",)
    description = (_RULES.format(dense="contrast split (sign of P_j-N_j+b_j picks the side "
                                       "getting max(R+,R-), shares |z_ij|/P_j or /N_j)")
                   + "; R- seeded on the other classes by softmax, summing to 1. Channel score "
                   "by magnitude: sum over images of |sum over positions of (R+ - R-)| (channel "
                   "only: on weights the rule ties many live weights at 0)")
