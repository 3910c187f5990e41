"""The suite's ground, below every other package: errors, the strict params loader, image I/O and
atomic output folders, seeding, manifests and dataset listing.

``degradations/``, ``metrics/`` and ``methods/`` build on this package and never import
``pipeline/``; nothing here imports any of them.
"""
