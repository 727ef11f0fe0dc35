"""Reusable attribution engines that method plugins call (part of the public plugin API).

``bench.api`` is the contract (Method, Site, Batch, capture); the modules here compute
relevance with real libraries (zennit for LRP, lxt's rules for AttnLRP, captum for
Integrated Gradients) or, for DL-Backtrace, with this project's own vectorised
implementation. Plugins in ``methods/`` stay small by delegating to them.
"""

from bench.attribution.attnlrp import attnlrp_rules
from bench.attribution.attnlrp import relevance as attnlrp_relevance
from bench.attribution.backtrace import scores as backtrace_scores
from bench.attribution.graph import consuming_batchnorms
from bench.attribution.ig import conductance, weight_ig
from bench.attribution.lrp import composite_for, relevance

__all__ = ["attnlrp_relevance", "attnlrp_rules", "backtrace_scores", "composite_for",
           "conductance", "consuming_batchnorms", "relevance", "weight_ig"]
