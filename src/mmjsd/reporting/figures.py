"""Writing matplotlib figures: PNG and PDF, atomically and without time stamps.

Shared by the table and curve figures (:mod:`mmjsd.plots`) and the sample figures
(:mod:`mmjsd.samples`), so neither imports the other.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from mmjsd.core.io import atomic_path

FIGURE_FORMATS = ("png", "pdf")


def save_figure(figure: Figure, stem: Path) -> list[Path]:
    """Write ``stem.png`` and ``stem.pdf`` atomically, without time stamps in the files."""
    metadata = {"png": {"Software": None}, "pdf": {"CreationDate": None, "Producer": None}}
    paths = []
    for fmt in FIGURE_FORMATS:
        path = stem.with_name(f"{stem.name}.{fmt}")
        with atomic_path(path, suffix=f".{fmt}") as tmp:
            figure.savefig(tmp, format=fmt, dpi=150, metadata=metadata[fmt])
        paths.append(path)
    return paths
