"""How each output format writes text: LaTeX and Markdown escaping, bold, footnote markers, numbers.

Shared by the table writers (:mod:`mmjsd.tables.render`), the paper comparison and the
summary page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: Text-mode replacements of LaTeX's special characters (``<``, ``>``, ``|`` print wrongly in OT1).
LATEX_REPLACEMENTS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
}

#: Characters Markdown tables, emphasis or inline HTML would interpret.
MARKDOWN_REPLACEMENTS = {"\\": "\\\\", "|": "\\|", "*": "\\*", "_": "\\_", "<": "&lt;"}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters for text mode."""
    return "".join(LATEX_REPLACEMENTS.get(char, char) for char in text)


def latex_label(text: str) -> str:
    """Escape a label, writing ``->`` as an arrow (``S->M`` → ``S$\\to$M``)."""
    return r"$\to$".join(latex_escape(part) for part in text.split("->"))


def markdown_escape(text: str) -> str:
    """Escape characters that Markdown tables or emphasis would interpret."""
    return "".join(MARKDOWN_REPLACEMENTS.get(char, char) for char in text)


def markdown_label(text: str) -> str:
    """Escape a label, writing ``->`` as an arrow (``S->M`` → ``S→M``)."""
    return "→".join(markdown_escape(part) for part in text.split("->"))


@dataclass(frozen=True)
class Markup:
    """How one output format writes text, labels, bold, footnote markers, code and numbers."""

    text: Callable[[str], str]
    label: Callable[[str], str]
    bold: Callable[[str], str]
    marker: Callable[[str], str]
    code: Callable[[str], str]
    plus_minus: str
    minus: str


LATEX = Markup(
    text=latex_escape,
    label=latex_label,
    bold=lambda s: rf"\textbf{{{s}}}",
    marker=lambda s: rf"\textsuperscript{{{s}}}",
    code=lambda s: rf"\texttt{{{latex_escape(s)}}}",
    plus_minus=r" $\pm$ ",
    minus="$-$",
)

MARKDOWN = Markup(
    text=markdown_escape,
    label=markdown_label,
    bold=lambda s: f"**{s}**",
    marker=lambda s: f"<sup>{s}</sup>",
    code=lambda s: f"`{s}`",
    plus_minus=" ± ",
    minus="-",
)


def format_number(value: float, precision: int, minus: str = "-", signed: bool = False) -> str:
    """Fixed-point text; no ``-0``; ``signed`` adds ``+`` to positive numbers (for differences)."""
    text = f"{value:+.{precision}f}" if signed else f"{value:.{precision}f}"
    if float(text) == 0:
        text = text.lstrip("+-")
        return f"+{text}" if signed else text
    return minus + text[1:] if text.startswith("-") else text


def markdown_grid(rows: list[list[str]]) -> str:
    """A pipe table: first row is the header; the model column left, the others right-aligned."""
    align = ["---"] + ["---:"] * (len(rows[0]) - 1)
    return "\n".join("| " + " | ".join(row) + " |" for row in [rows[0], align, *rows[1:]])
