"""The library of the reporting steps (``tables``, ``plots``, ``samples``, ``summary``): readers of the result
files, the bundled paper tables, figure writing and the names of the sample figures the Snakefile declares.

Nothing here is a step. Only ``figures`` imports matplotlib; ``outputs`` is read at Snakefile parse time.
"""
