"""Shared command-line plumbing for the ``python -m mmjsd.<step>`` entry points."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from mmjsd.core import registry
from mmjsd.core.errors import UserError


def json_arg(text: str) -> Any:
    """argparse type for the canonical JSON params strings Snakemake passes to steps."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err}): {text[:200]!r}") from err


def add_runtime_arguments(parser: argparse.ArgumentParser, progress: bool = True) -> None:
    """--device, --threads (and --no-progress) of the steps that run torch."""
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="config key 'device'")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    if progress:
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def main_guard(main: Callable[[Sequence[str] | None], None], argv: Sequence[str] | None = None) -> None:
    """Run a step's ``main``; a :class:`UserError` becomes ``error: ...`` and exit status 2.

    The plugins named in :data:`mmjsd.core.registry.PLUGINS_VARIABLE` (the Snakefile sets it for
    every job from the config key ``plugins``) are loaded first, so the step's choices and
    lookups include their objectives, metrics and datasets.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    try:
        registry.load_plugins(registry.plugins_from_environment())
        main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
