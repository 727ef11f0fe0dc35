"""``python -m bench.cli``: the same as the ``xprune`` entry point."""

from bench.cli.main import main

main()
