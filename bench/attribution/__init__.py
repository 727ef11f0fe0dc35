"""Reusable attribution engines that method plugins call (part of the public plugin API).

``bench.api`` is the contract (Method, Site, Batch, capture); the modules here compute
relevance with real libraries (zennit for LRP, captum for Integrated Gradients) or, for
DL-Backtrace, with this project's own vectorised implementation. Plugins in ``methods/``
stay small by delegating to them.
"""
