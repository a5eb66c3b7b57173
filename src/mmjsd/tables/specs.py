"""Which tables exist: the paper's Tables 1-5 as declarations, and one table per metric no paper table covers.

Each paper table is one :class:`TableSpec` (dataset, columns as ``(paper label, metric,
key)``, direction, precision, the bundled paper CSV). A metric of the registry that no
paper table of a dataset reads (a plugin's metric, or PRD on CelebA) gets a table of its
own, :func:`metric_table`, whose columns are the value keys found in its metric files
and which has no paper comparison. :func:`planned_tables` lists what a configuration
produces and :func:`table_files` the files of the tables step under ``results/tables/``:
each table per protocol, the paper comparisons, the departures tables. The Snakefile reads
them at parse time, so this module imports neither torch, numpy nor pandas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mmjsd.core import registry
from mmjsd.core.departures import CORRECTED_PROTOCOL, PROTOCOLS
from mmjsd.reporting.metrics_io import INCEPTION_EXTRACTOR

#: Opening of every statement that a table must not be set beside the paper's.
NOT_COMPARABLE = "Not comparable with the paper"

LIKELIHOOD_CAVEAT = (
    "The paper's Table 4 was computed with the reference code's importance-sampling grouping "
    "(the log-mean-exp over K samples mixes different test points), which is biased upwards; "
    "ours is the per-point estimator (log-sum-exp over K samples of each test point). "
    "Differences mix model and estimator effects; compare rankings rather than magnitudes."
)
PROBE_CAVEAT = (
    "The mmJSD code fitted its probes on the last training batch (256 pairs, encoded in train mode) and "
    "cannot produce the subset columns; ours are fitted per subset on posterior means of random training "
    "pairs (the MoPoE protocol, sizes in the caption)."
)
COHERENCE_CAVEAT = (
    "Our classifiers run in eval mode (the reference code left dropout and batch statistics on), and random "
    "coherence counts a sample only when all modalities agree; it is not known which formula gave the "
    "paper's random column (the mmJSD code's scores 0.82 on uniformly random predictions)."
)
CELEBA_CAVEAT = (
    "The mmJSD code fitted its probes on the last training batch (256 pairs) and averaged AP over test "
    "batches with classifiers in train mode; ours fits on random training pairs (sizes in the caption), pools "
    "AP over the whole test split per attribute and runs the classifiers in eval mode."
)


@dataclass(frozen=True)
class Column:
    """One table column: its header label and where its number comes from."""

    label: str
    metric: str
    key: str


def columns(metric: str, keys_by_label: dict[str, str]) -> tuple[Column, ...]:
    """Columns of one metric, from ``{paper label: key in the metric file's values}``."""
    return tuple(Column(label, metric, key) for label, key in keys_by_label.items())


@dataclass(frozen=True)
class TableSpec:
    """How one table is laid out and filled.

    ``name`` is the output file stem, ``number`` the paper's table number (None for a
    table of ours), ``paper_csv`` the bundled file with the paper's values (None: no
    comparison is written), ``precision`` the decimals shown, ``value_label`` the y-axis
    label of its figure. ``paper_extractor``, when set, is the feature extractor the paper
    used: the comparison is made only when every metric file used it.
    ``comparison_caveat`` is printed with the comparison. ``columns_of`` names a metric
    whose value keys become the columns when the table is built (tables of metrics that
    no paper table covers).
    """

    name: str
    title: str
    dataset: str
    columns: tuple[Column, ...]
    precision: int
    value_label: str
    number: int | None = None
    paper_csv: str | None = None
    higher_is_better: bool = True
    paper_extractor: str | None = None
    comparison_caveat: str = ""
    columns_of: str | None = None

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metric files this table reads, in column order."""
        if self.columns_of is not None:
            return (self.columns_of,)
        return tuple(dict.fromkeys(column.metric for column in self.columns))

    @property
    def compared(self) -> bool:
        """Whether the table is written beside the paper's values (it has a paper CSV)."""
        return self.paper_csv is not None

    @property
    def heading(self) -> str:
        """``Table 3`` for a paper table, ``Not in the paper`` for one of ours."""
        return f"Table {self.number}" if self.number is not None else "Not in the paper"

    @property
    def file_names(self) -> tuple[str, ...]:
        """The files of this table for one protocol (under ``results/tables/<protocol>/``)."""
        return (f"{self.name}.csv", f"{self.name}.tex", f"{self.name}.md")

    @property
    def comparison_file_names(self) -> tuple[str, ...]:
        """The files of its paper comparison (under ``results/tables/``; none without a paper CSV)."""
        return (f"{self.name}_vs_paper.csv", f"{self.name}_vs_paper.md") if self.compared else ()

    @property
    def departure_file_names(self) -> tuple[str, ...]:
        """The files of its corrected − reference-exact table (under ``results/tables/departures/``)."""
        return (f"{self.name}.csv", f"{self.name}.md")

    @property
    def figure_stem(self) -> str:
        """Stem of its figure: ``<name>_vs_paper`` beside the paper's values, else ``<name>``."""
        return f"{self.name}_vs_paper" if self.compared else self.name


TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        name="table1_latent_probe",
        number=1,
        title="Linear classification accuracy of the latent representations",
        dataset="mnist_svhn_text",
        columns=columns(
            "latent_probe",
            {
                "M": "mnist",
                "S": "svhn",
                "T": "text",
                "M,S": "mnist+svhn",
                "M,T": "mnist+text",
                "S,T": "svhn+text",
                "M-S-T": "mnist+svhn+text",
            },
        ),
        paper_csv="mmjsd_table1_latent_classification.csv",
        precision=2,
        value_label="accuracy",
        comparison_caveat=PROBE_CAVEAT,
    ),
    TableSpec(
        name="table2_coherence",
        number=2,
        title="Coherence of conditional and random generation",
        dataset="mnist_svhn_text",
        columns=columns(
            "coherence",
            {
                "random": "random",
                "S->M": "svhn->mnist",
                "T->M": "text->mnist",
                "S,T->M": "svhn+text->mnist",
                "M->S": "mnist->svhn",
                "T->S": "text->svhn",
                "M,T->S": "mnist+text->svhn",
                "M->T": "mnist->text",
                "S->T": "svhn->text",
                "M,S->T": "mnist+svhn->text",
            },
        ),
        paper_csv="mmjsd_table2_coherence.csv",
        precision=2,
        value_label="coherence",
        comparison_caveat=COHERENCE_CAVEAT,
    ),
    TableSpec(
        name="table3_prd",
        number=3,
        title="Quality of generated images (PRD average precision)",
        dataset="mnist_svhn_text",
        columns=columns(
            "prd",
            {
                "S->M": "svhn->mnist",
                "T->M": "text->mnist",
                "S,T->M": "svhn+text->mnist",
                "random M": "random->mnist",
                "M->S": "mnist->svhn",
                "T->S": "text->svhn",
                "M,T->S": "mnist+text->svhn",
                "random S": "random->svhn",
            },
        ),
        paper_csv="mmjsd_table3_prd_precision.csv",
        precision=3,
        value_label="PRD average precision",
        paper_extractor=INCEPTION_EXTRACTOR,
    ),
    TableSpec(
        name="table4_likelihood",
        number=4,
        title="Test log-likelihood of all modalities (X) with the posterior of each subset as proposal",
        dataset="mnist_svhn_text",
        columns=columns(
            "likelihood",
            {
                "X": "joint|mnist+svhn+text",
                "X|M": "joint|mnist",
                "X|S": "joint|svhn",
                "X|T": "joint|text",
                "X|M,S": "joint|mnist+svhn",
                "X|M,T": "joint|mnist+text",
                "X|S,T": "joint|svhn+text",
            },
        ),
        paper_csv="mmjsd_table4_log_likelihood.csv",
        precision=0,
        value_label="log-likelihood (nats)",
        comparison_caveat=LIKELIHOOD_CAVEAT,
    ),
    TableSpec(
        name="table5_celeba",
        number=5,
        title="Latent representation and generation, mean average precision over the 40 attributes",
        dataset="celeba",
        columns=columns("latent_probe", {"latent I": "img", "latent T": "text", "latent joint": "img+text"})
        + columns("coherence", {"I->T": "img->text", "T->I": "text->img"}),
        paper_csv="mmjsd_table5_celeba.csv",
        precision=2,
        value_label="mean average precision",
        comparison_caveat=CELEBA_CAVEAT,
    ),
)

TABLES_BY_NAME = {spec.name: spec for spec in TABLES}


def metric_table(dataset: str, metric: str) -> TableSpec:
    """The table of a metric that no paper table of ``dataset`` reads: its value keys as columns, no comparison."""
    spec = registry.metric(metric)
    return TableSpec(
        name=f"{dataset}_{metric}",
        title=spec.label,
        dataset=dataset,
        columns=(),
        precision=spec.precision,
        value_label=spec.label,
        higher_is_better=spec.higher_is_better,
        columns_of=metric,
    )


def covered_metrics(dataset: str) -> set[str]:
    """Metrics that some paper table of ``dataset`` reads."""
    return {metric for spec in TABLES if spec.dataset == dataset for metric in spec.metrics}


#: Directory (under ``results/tables/``) of the tables of differences between protocols and switches.
DEPARTURES_DIR = "departures"
#: Stem of the table of each evaluation switch flipped alone (``results/tables/departures/evaluation.{csv,md}``).
EVALUATION_DEPARTURES = "evaluation"


def table_files(tables: Sequence[TableSpec], protocols: Sequence[str]) -> list[str]:
    """Every file the tables step writes, relative to ``results/tables/``.

    ``<protocol>/<table>.{csv,tex,md}`` for each configured protocol;
    ``<table>_vs_paper.{csv,md}`` for the paper's tables (from one protocol's runs);
    ``departures/<table>.{csv,md}`` when both protocols run; and
    ``departures/evaluation.{csv,md}`` (each evaluation switch flipped alone on the corrected
    runs) when the corrected protocol runs.
    """
    files = [
        f"{protocol}/{name}" for protocol in PROTOCOLS if protocol in protocols for t in tables for name in t.file_names
    ]
    files += [name for t in tables for name in t.comparison_file_names]
    if set(PROTOCOLS) <= set(protocols):
        files += [f"{DEPARTURES_DIR}/{name}" for t in tables for name in t.departure_file_names]
    if CORRECTED_PROTOCOL in protocols:
        files += [f"{DEPARTURES_DIR}/{EVALUATION_DEPARTURES}.{suffix}" for suffix in ("csv", "md")]
    return files


def planned_tables(metrics_by_dataset: Mapping[str, Sequence[str]]) -> list[TableSpec]:
    """The paper tables of the datasets, then a :func:`metric_table` per (dataset, metric) no paper table covers."""
    paper = [spec for spec in TABLES if spec.dataset in metrics_by_dataset]
    ours = [
        metric_table(dataset, metric)
        for dataset, metrics in metrics_by_dataset.items()
        for metric in metrics
        if metric not in covered_metrics(dataset)
    ]
    return paper + ours
