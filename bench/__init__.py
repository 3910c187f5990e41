"""Performance benchmarks (not tests): ``python -m bench.<name>``."""
