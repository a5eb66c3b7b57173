"""The one exception type that reaches users as a message instead of a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix: bad config, missing or corrupt input file, NaN loss.

    The message must name the file or config key and say what to do. CLIs print it
    as ``error: <message>`` and exit with status 2 (see :func:`mmjsd.core.cli.main_guard`).
    """
