"""frbench pipeline: CLI, config loading, image I/O, DVC stage entry points, MLflow, reports."""
__version__ = "0.1.0"
