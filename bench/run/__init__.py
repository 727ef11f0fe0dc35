"""The coordinator: plan a matrix, run its lifecycle (``coordinator.plan``, then
``coordinator.execute``), hand its tasks to an executor (local workers or Slurm), write
records, log them to MLflow, keep the output folder's lock and journal.
"""
