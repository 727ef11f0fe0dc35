"""The ``xprune`` command line: option parsing (``args``), what it prints (``console``), and the
commands (``main``), each a call into the module that owns the work.
"""

from bench.cli.main import app, main

__all__ = ["app", "main"]
