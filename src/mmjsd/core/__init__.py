"""The library every step shares: typed config, the registries, the departure switches, errors, file writing,
command-line plumbing, the torch run time and code versions.

Steps are the top-level modules of :mod:`mmjsd` (``python -m mmjsd.<step>``); nothing here is a step. The
modules read at Snakefile parse time (``config``, ``registry``, ``departures``, ``errors``, ``io``,
``provenance``) import no torch, and neither does this package's ``__init__``.
"""
