"""MVTCAE (Hwang et al., NeurIPS 2021) as a plugin of the mmJSD pipeline:
``plugin`` registers it, ``model`` implements it."""
