"""Tables 1-5 of the mmJSD paper, and a table per metric no paper table covers, from per-run metric files.

Where things are:

* :mod:`~mmjsd.tables.specs`: which tables exist (the paper's as :class:`TableSpec`
  declarations; :func:`metric_table` for the others) and their file names; torch- and
  pandas-free, read by the Snakefile;
* :mod:`~mmjsd.tables.context`: what the configuration says about the numbers (data source,
  pipeline checks, protocols), shared with the figures and the summary;
* :mod:`~mmjsd.tables.aggregate`: metric files → cells (mean, sample std, seeds, footnotes,
  chance levels), one protocol at a time;
* :mod:`~mmjsd.tables.markup` and :mod:`~mmjsd.tables.render`: LaTeX, Markdown and the
  tidy CSV of one table, captions included;
* :mod:`~mmjsd.tables.compare`: ours beside the paper's values;
* :mod:`~mmjsd.tables.departures`: corrected − reference-exact per cell, and each evaluation
  switch alone, with a paired t-test against seed noise;
* :mod:`~mmjsd.tables.cli`: ``python -m mmjsd.tables``.

This package's ``__init__`` imports nothing, so the Snakefile can read the specs without
loading pandas.
"""
