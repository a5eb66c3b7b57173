"""mmJSD reproduction pipeline: data, models, evaluation and tables as small CLIs.

Every pipeline step is ``python -m mmjsd.<step>``; see the README for the list.
Importing this package must stay cheap (no torch): the Snakefile imports it at parse time.
"""

__version__ = "0.1.0"
