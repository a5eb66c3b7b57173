"""Active units as a plugin metric of the mmJSD pipeline: ``plugin`` registers it, ``evaluator`` computes it."""
