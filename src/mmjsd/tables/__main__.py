"""``python -m mmjsd.tables``: see :mod:`mmjsd.tables.cli`."""

from mmjsd.core.cli import main_guard
from mmjsd.tables.cli import main

main_guard(main)
