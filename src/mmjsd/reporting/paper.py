"""The mmJSD paper's Tables 1-5, bundled with the package (``mmjsd/resources/paper/*.csv``).

Each CSV has a ``model`` column with the paper's row labels (``mmJSD (MS)``) and one
column per table column, headed by the paper's label (``S->M``, ``X|M,S``). The files are
read through :mod:`importlib.resources`, so an installed package needs nothing outside it.
"""

from __future__ import annotations

import csv
import io
from importlib import resources

#: Where the bundled CSVs live inside the package.
PAPER_RESOURCE_DIR = ("resources", "paper")

PaperTable = dict[tuple[str, str], float]


def paper_csv_text(file_name: str) -> str:
    """The text of one bundled paper CSV."""
    return resources.files("mmjsd").joinpath(*PAPER_RESOURCE_DIR, file_name).read_text(encoding="utf-8")


def parse_paper_csv(text: str) -> PaperTable:
    """``{(model label, column label): value}`` for every non-empty cell of a paper CSV."""
    table: PaperTable = {}
    for row in csv.DictReader(io.StringIO(text)):
        model = row.pop("model")
        table.update({(model, column): float(cell) for column, cell in row.items() if cell.strip()})
    return table


def load_paper_table(file_name: str) -> PaperTable:
    """Parse one bundled paper CSV (see :func:`parse_paper_csv`)."""
    return parse_paper_csv(paper_csv_text(file_name))
