"""XPrune Bench: attribution-guided pruning benchmark for medical image classifiers.

The engine lives here; method plugins live in the repository's ``methods/`` folder (loaded by
path) or in third-party packages registered under the ``xprune.methods`` entry-point group.
The public plugin API is :mod:`bench.api`.
"""

__version__ = "0.1.0"
