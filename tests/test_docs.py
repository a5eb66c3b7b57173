"""The repository stands alone: every document it cites exists in it, with the cited section.

A citation is a path to a Markdown file followed by optional sections, as docstrings and docs
write them: ``docs/reference-code.md §3.7``, ``docs/metrics.md §4.5, §6 item 8``,
``docs/reference-code.md §1.1-1.3 and §6``, or a Markdown link ``[design.md](design.md) §5``.
``§N`` must be a heading numbered N in the cited file (``## 5. …``, ``### 3.7 …``); ``§N item k``
must also find ``k.`` as a numbered list item inside that section. ``docs/…`` paths resolve from
the repository root; other paths from the root or from the citing file's directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Files and directories whose text may cite documents.
SCANNED = (
    "src",
    "tests",
    "workflow",
    "docs",
    "scripts",
    "envs",
    ".ci",
    "README.md",
    "Snakefile",
    "config.yaml",
    "results/README.md",
    "Makefile",
    "pyproject.toml",
)
TEXT_SUFFIXES = {".py", ".smk", ".md", ".yaml", ".yml", ".rst", ".toml", ".sh", ".txt", ""}
SKIPPED_DIRS = {"__pycache__", ".pytest_cache", ".snakemake"}

#: Notes kept outside the repository, which nothing in it may depend on (spelled in pieces so
#: that this file does not mention them itself).
OUTSIDE_NOTES = tuple(f"{name}.md" for name in ("REFERENCE", "EVALUATION", "DESIGN", "SNAKEMAKE")) + (
    "../" + "shared",
    "/work/" + "shared",
)

SECTION = r"\d+(?:\.\d+)*(?:\([a-z]\))?"
SECTION_SPAN = rf"{SECTION}(?:\s*[-–]\s*{SECTION})?"
ITEMS = r"\s+items?\s+\d+(?:\s*(?:,|and|-|–)\s*\d+)*"
ONE_SECTION = re.compile(rf"§\s?(?P<span>{SECTION_SPAN})(?P<items>{ITEMS})?")
_UNNAMED_SECTION = rf"§\s?{SECTION_SPAN}(?:{ITEMS})?"
SECTION_LIST = re.compile(rf"`?\)?(?:\s*{_UNNAMED_SECTION}(?:(?:,\s*|\s+and\s+){_UNNAMED_SECTION})*)?")
#: A cited document: a docs/ path, a Markdown link target, or any .md path directly followed by a section.
DOCUMENT = re.compile(
    r"(?<![\w/.-])(?P<docs>docs/[\w.-]+\.md)\b"
    r"|\]\((?P<link>[^)\s#]+\.md)(?:#[^)\s]*)?\)"
    r"|(?<![\w/.-])(?P<other>[\w./-]+\.md)(?=`?\s?§)"
)
NUMBERED_HEADING = re.compile(r"^(#{1,6})\s+(\d+(?:\.\d+)*)\.?\s")
ANY_HEADING = re.compile(r"^(#{1,6})\s")
LIST_ITEM = re.compile(r"^\s*(\d+)\.\s")


@dataclass(frozen=True)
class Citation:
    source: str  # citing file, relative to the root
    line: int
    document: str  # as written
    root_relative: bool  # a docs/ path, resolved from the root only
    section: str | None = None  # "3.7", "1.1-1.3", "6"
    items: tuple[str, ...] = ()

    def where(self) -> str:
        cited = self.document + (f" §{self.section}" if self.section else "")
        cited += f" item {', '.join(self.items)}" if self.items else ""
        return f"{self.source}:{self.line}: {cited}"


def cited_documents(text: str) -> list[tuple[re.Match, list[re.Match]]]:
    """Each document match with the section matches that follow it (positions in ``text``)."""
    found = []
    for match in DOCUMENT.finditer(text):
        tail = SECTION_LIST.match(text, match.end())
        found.append((match, list(ONE_SECTION.finditer(text, match.end(), tail.end()))))
    return found


def citations(text: str, source: str) -> list[Citation]:
    """Every document citation in ``text``, one per cited section (or one without a section)."""
    found = []
    for match, sections in cited_documents(text):
        document = match.group("docs") or match.group("link") or match.group("other")
        line = text.count("\n", 0, match.start()) + 1
        root_relative = match.group("docs") is not None
        if not sections:
            found.append(Citation(source, line, document, root_relative))
        for cited in sections:
            items = tuple(re.findall(r"\d+", cited.group("items") or ""))
            span = re.sub(r"\s+", "", cited.group("span"))
            found.append(Citation(source, line, document, root_relative, span, items))
    return found


def numbered_sections(document: Path) -> dict[str, list[str]]:
    """Section number -> the lines under its heading, up to the next heading of the same or a higher level."""
    lines = document.read_text(encoding="utf-8").splitlines()
    heads = [(i, len(m.group(1))) for i, line in enumerate(lines) if (m := ANY_HEADING.match(line))]
    sections = {}
    for i, line in enumerate(lines):
        if match := NUMBERED_HEADING.match(line):
            level = len(match.group(1))
            end = next((j for j, lvl in heads if j > i and lvl <= level), len(lines))
            sections[match.group(2)] = lines[i + 1 : end]
    return sections


def resolve(root: Path, citation: Citation) -> Path | None:
    """The cited file inside ``root``, or None."""
    candidates = [root / citation.document]
    if not citation.root_relative:
        candidates.append(root / Path(citation.source).parent / citation.document)
    for candidate in candidates:
        path = candidate.resolve()
        if path.is_file() and path.is_relative_to(root.resolve()):
            return path
    return None


def problems(root: Path, found: list[Citation]) -> list[str]:
    """What is wrong with each citation: a missing file, section or item."""
    wrong = []
    cache: dict[Path, dict[str, list[str]]] = {}
    for citation in found:
        path = resolve(root, citation)
        if path is None:
            wrong.append(f"{citation.where()}: no such file in the repository")
            continue
        if citation.section is None:
            continue
        sections = cache.setdefault(path, numbered_sections(path))
        ends = re.split(r"[-–]", citation.section)
        missing = [end for end in ends if end not in sections]
        if missing:
            wrong.append(f"{citation.where()}: no heading numbered {', '.join(missing)}")
            continue
        listed = {m.group(1) for line in sections[ends[0]] if (m := LIST_ITEM.match(line))}
        wrong.extend(
            f"{citation.where()}: section {ends[0]} has no numbered item {item}"
            for item in citation.items
            if item not in listed
        )
    return wrong


def scanned_files(root: Path) -> list[Path]:
    files = []
    for entry in SCANNED:
        path = root / entry
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(
                sub
                for sub in sorted(path.rglob("*"))
                if sub.is_file() and sub.suffix in TEXT_SUFFIXES and not SKIPPED_DIRS & set(sub.relative_to(root).parts)
            )
    return files


def repository_citations(root: Path) -> list[Citation]:
    """Citations in every scanned file but this one, whose examples cite made-up documents on purpose."""
    found = []
    for path in scanned_files(root):
        if path.resolve() == Path(__file__).resolve():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        found.extend(citations(text, str(path.relative_to(root))))
    return found


def test_the_parser_reads_every_citation_form():
    text = (
        "(docs/metrics.md §4.5, §6 item 8) and docs/reference-code.md §1.1-1.3 and §6; see "
        "[design.md](design.md) §5, `docs/workflow.md` §3, docs/reference-code.md §1.3, steps 1-4, "
        "docs/file-formats.md and NOTES.md §2(b)"
    )
    found = [(c.document, c.section, c.items) for c in citations(text, "x.py")]
    assert found == [
        ("docs/metrics.md", "4.5", ()),
        ("docs/metrics.md", "6", ("8",)),
        ("docs/reference-code.md", "1.1-1.3", ()),
        ("docs/reference-code.md", "6", ()),
        ("design.md", "5", ()),
        ("docs/workflow.md", "3", ()),
        ("docs/reference-code.md", "1.3", ()),
        ("docs/file-formats.md", None, ()),
        ("NOTES.md", "2(b)", ()),
    ]


def test_the_checker_reports_missing_files_sections_and_items(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text(
        "# Guide\n\n## 1. Data\n\n### 1.2 Text\n\n## 6. Speed\n\n1. first\n2. second\n\n## 7. Other\n\n3. third\n"
    )
    (tmp_path / "mod.py").write_text(
        '"""docs/guide.md §1.2, §6 item 2; [g](docs/guide.md) §1-6."""\n'
        "# docs/guide.md §1.3 and §6 item 3, docs/gone.md §1, docs/guide.md §2(c)\n"
    )
    found = citations((tmp_path / "mod.py").read_text(), "mod.py")
    assert problems(tmp_path, found) == [
        "mod.py:2: docs/guide.md §1.3: no heading numbered 1.3",
        "mod.py:2: docs/guide.md §6 item 3: section 6 has no numbered item 3",
        "mod.py:2: docs/gone.md §1: no such file in the repository",
        "mod.py:2: docs/guide.md §2(c): no heading numbered 2(c)",
    ]


def test_every_cited_document_and_section_exists():
    found = repository_citations(ROOT)
    # The docstrings cite the docs about a hundred times; far fewer means the parser went blind.
    assert sum(c.section is not None for c in found) > 100
    assert problems(ROOT, found) == []


def test_sections_a_document_cites_without_a_file_name_are_its_own():
    """In docs/, a bare ``§N`` (not after a cited file) refers to the same
    document, so it must be one of its headings."""
    wrong = []
    for path in sorted((ROOT / "docs").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        attached = {section.start() for _, sections in cited_documents(text) for section in sections}
        own = numbered_sections(path)
        for bare in ONE_SECTION.finditer(text):
            ends = re.split(r"[-–]", re.sub(r"\s+", "", bare.group("span")))
            if bare.start() not in attached and any(end not in own for end in ends):
                wrong.append(f"docs/{path.name}:{text.count(chr(10), 0, bare.start()) + 1}: {bare.group(0)}")
    assert wrong == []


@pytest.mark.parametrize("note", OUTSIDE_NOTES)
def test_nothing_refers_to_notes_outside_the_repository(note):
    hits = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in scanned_files(ROOT)
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1)
        if note in line
    ]
    assert hits == [], f"{note} is not part of the repository; cite docs/ instead"


def test_readme_links_every_document_in_docs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = {m.group("link") for m in DOCUMENT.finditer(readme) if m.group("link")}
    assert {f"docs/{path.name}" for path in (ROOT / "docs").glob("*.md")} <= linked
