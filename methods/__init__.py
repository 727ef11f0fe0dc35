"""Built-in method plugins, one file each, loaded by path by ``bench.plugins`` (wheels carry
this folder as ``bench.methods``; it is never installed as a top-level ``methods`` package)."""
