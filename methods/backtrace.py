"""DL-Backtrace (Sankarapu et al. 2024): default and contrast modes, via bench.attribution."""

from bench.api import Method
from bench.attribution.backtrace import scores

_RULES = ("v0.1.x rules: Linear/Conv2d {dense}; MaxPool, AvgPool and global pool split uniformly; "
          "residual sum R/2 to each; BN/ReLU/Dropout identity; seed 1 at the predicted class")


class Backtrace(Method):
    name = "backtrace"
    family = "backtrace"
    description = (_RULES.format(dense="R_j|z_ij|/(P_j+N_j+|b_j|)") + ". Channel: relevance at "
                   "the output summed over images and positions; weight: sum over images and "
                   "positions of the relevance R_{i<-j} it carries")
    reference = "Sankarapu et al. 2024, DLBacktrace, arXiv:2411.12643"
    version = "1"
    granularities = ("channel", "weight")
    needs_grad = False
    mode = "default"

    def score(self, model, sites, batch):
        return scores(model, sites, batch, self.mode)


class BacktraceContrast(Backtrace):
    name = "backtrace-contrast"
    mode = "contrast"
    description = (_RULES.format(dense="contrast split (sign of P_j-N_j+b_j picks the side "
                                       "getting max(R+,R-), shares |z_ij|/P_j or /N_j)")
                   + "; R- seeded on the other classes by softmax, summing to 1. Channel: "
                   "R+ - R- at the output summed over images and positions; weight: R+ - R- "
                   "carried, summed likewise")
