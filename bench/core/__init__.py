"""The torch-free vocabulary: axes, specs and presets, tasks, the registry, errors, backbone facts,
a method's declarations (``method.MethodLabel``), every cache path.

The planner, the CLI and the records import only this layer before any work starts;
``tests/test_layout.py`` asserts that importing it loads neither torch nor MLflow.
"""
