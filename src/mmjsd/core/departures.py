"""Every place where the pipeline departs from the official code, as one registry of switches (docs/departures.md).

The paper's numbers come from the official code (thomassutter/mmjsd; MoPoE's objective from
thomassutter/MoPoE), quirks included. The pipeline corrects some of them by default. Each
such departure is a :class:`Departure` with two values:

* ``corrected`` (the default, what docs/design.md §4-5 describe);
* ``reference``: the official code's behaviour, bit for bit where the golden tests can check it.

``config.yaml``'s top-level ``departures:`` mapping holds one value per departure (every key
present). It is the switch set of the runs called "corrected"; :func:`reference_exact` gives
the switch set that reproduces the official computation. The config key ``protocols`` lists
which of the two :data:`PROTOCOLS` run (:func:`protocol_switches` gives each one's switch
set); their results live side by side under ``results/runs/<protocol>/``. Everything else
derives from this registry: config validation (:func:`check_switches`), which departures reach a training job
(:func:`training_switches`, through ``TrainConfig.departures``) and which reach a metric job
(:func:`metric_switches`, through ``MetricJob.departures``), and the test that
``docs/departures.md`` lists exactly these departures.

A departure reaches a job only where flipping it can move a number, so flipping one reruns
only the jobs it can change. Training departures change the trained model (and everything
evaluated on it); evaluation departures are recomputed, each flipped alone, in the metric job
itself (the metric file's ``alternatives``), so they cost no retraining.

This module stays free of torch: the Snakefile reads it at parse time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mmjsd.core.errors import UserError

#: The two values of every switch.
CORRECTED = "corrected"
REFERENCE = "reference"
VALUES = (CORRECTED, REFERENCE)

#: Where a departure acts: in the training job (it changes the model) or in a metric job.
TRAINING = "training"
EVALUATION = "evaluation"

_ALL_DATASETS = ("mnist_svhn_text", "celeba")
_ALL_OBJECTIVES = ("mvae", "mmvae", "mmjsd", "mopoe")


@dataclass(frozen=True)
class Departure:
    """One departure from the official code and its switch.

    ``datasets``/``objectives`` (training) or ``datasets``/``metrics`` (evaluation) say where
    flipping the switch can move a number. A training departure with ``modality_specific``
    acts only on ``-ms`` variants; one with ``needs_setting`` only when that hyper-parameter
    of the run is set (not null). ``official`` says in words what the official code does,
    ``ours`` what the corrected default does and why.
    """

    name: str
    stage: str
    official: str
    ours: str
    datasets: tuple[str, ...] = _ALL_DATASETS
    objectives: tuple[str, ...] = _ALL_OBJECTIVES
    metrics: tuple[str, ...] = ()
    modality_specific: bool = False
    needs_setting: str | None = None

    def __post_init__(self) -> None:
        if self.stage not in (TRAINING, EVALUATION):
            raise ValueError(f"departure {self.name}: stage must be {TRAINING!r} or {EVALUATION!r}")
        if (self.stage == EVALUATION) != bool(self.metrics):
            raise ValueError(f"departure {self.name}: evaluation departures name their metrics, training ones none")

    def acts_on_run(self, dataset: str, objective: str, modality_specific: bool, hparams: Mapping[str, Any]) -> bool:
        """Whether flipping this training departure can change a run of ``objective`` on ``dataset``."""
        return (
            self.stage == TRAINING
            and dataset in self.datasets
            and objective in self.objectives
            and (modality_specific or not self.modality_specific)
            and (self.needs_setting is None or hparams.get(self.needs_setting) is not None)
        )

    def acts_on_metric(self, dataset: str, metric: str) -> bool:
        """Whether flipping this evaluation departure can change ``metric`` on ``dataset``."""
        return self.stage == EVALUATION and dataset in self.datasets and metric in self.metrics


DEPARTURES: tuple[Departure, ...] = (
    # ---------------------------------------------------------------- training
    Departure(
        name="text_likelihood",
        stage=TRAINING,
        official=(
            "passes the text decoder's log-softmax values l as the probabilities of a one-hot categorical, "
            "so log p(t) = log(l_t / sum_j l_j); generated text is that categorical's mean l / sum(l), "
            "which the text classifiers receive and whose argmax is the least likely character under the softmax"
        ),
        ours=(
            "the decoder output is the logits of the categorical, log p(t) = log_softmax_t; generated text is "
            "the one-hot argmax of the softmax, in the format of real text"
        ),
    ),
    Departure(
        name="mvae_unimodal_kl",
        stage=TRAINING,
        objectives=("mvae",),
        official="the unimodal ELBO of m uses KL(q(z|x_m) || N(0, I)) of the raw encoder posterior",
        ours=(
            "KL(PoE(N(0, I), q(z|x_m)) || N(0, I)), the KL of the posterior the unimodal sample is drawn from "
            "(as the MoPoE repository's MVAE)"
        ),
    ),
    Departure(
        name="mvae_unimodal_style_noise",
        stage=TRAINING,
        objectives=("mvae",),
        modality_specific=True,
        official="each unimodal pass draws a fresh style sample of its modality",
        ours=(
            "the unimodal passes reuse the joint pass's style samples (the style posterior of x_m is the same in "
            "every pass; one draw less per modality)"
        ),
    ),
    Departure(
        name="dynamic_prior_epsilon",
        stage=TRAINING,
        objectives=("mmjsd",),
        official=(
            "the alpha-weighted product of experts forming mmJSD's dynamic prior adds 1e-8 to every "
            "expert's variance, N(0, I) included"
        ),
        ours="the dynamic prior is the alpha-weighted product of the experts as they are (the paper's equation)",
    ),
    Departure(
        name="celeba_mvae_rec_weights",
        stage=TRAINING,
        datasets=("celeba",),
        objectives=("mvae",),
        official=(
            "the CelebA MVAE ELBOs use the flag defaults 0.5 and 0.5 as reconstruction weights, in the joint and "
            "in the unimodal ELBOs (the model's 1 and 16 never reach the loss)"
        ),
        ours=(
            "the configured rec_weights in the joint ELBO and weight 1 in the unimodal ELBOs, as every other objective"
        ),
    ),
    Departure(
        name="gradient_clipping",
        stage=TRAINING,
        needs_setting="grad_clip_norm",
        official="Adam without gradient clipping",
        ours=(
            "gradients rescaled to the configured grad_clip_norm (CelebA: 100) before each step; without it the "
            "CelebA image encoder's Adam second moments overflow at step 2 and those parameters freeze"
        ),
    ),
    # -------------------------------------------------------------- evaluation
    Departure(
        name="probe_protocol",
        stage=EVALUATION,
        metrics=("latent_probe",),
        official=(
            "logistic regression fitted on the posterior means of the last training batch (256 rows), with a "
            "mixture's 'joint' taking each row's mean from its stratified component; scored per test batch"
        ),
        ours="fitted on n_train random training rows of the subset posterior means, draws times (MoPoE's protocol)",
    ),
    Departure(
        name="classifier_mode",
        stage=EVALUATION,
        metrics=("coherence",),
        official="coherence classifiers stay in train mode: dropout active, BatchNorm with the batch's statistics",
        ours="classifiers in eval mode: deterministic, independent of what else is in the batch",
    ),
    Departure(
        name="generated_image_range",
        stage=EVALUATION,
        metrics=("coherence",),
        official=(
            "the coherence classifiers receive the Laplace mean as decoded, unbounded "
            "(clamped only when written to PNG)"
        ),
        ours="generated images are clamped to [0, 1], the pixel range of the data the classifiers were trained on",
    ),
    Departure(
        name="random_coherence_formula",
        stage=EVALUATION,
        datasets=("mnist_svhn_text",),
        metrics=("coherence",),
        official=(
            "a random sample counts as coherent when (M == S) equals (M == T), also when MNIST disagrees with both"
        ),
        ours="coherent only when all three predicted digits agree (MoPoE's definition)",
    ),
    Departure(
        name="per_batch_average_precision",
        stage=EVALUATION,
        datasets=("celeba",),
        metrics=("latent_probe", "coherence"),
        official="average precision per attribute on every test batch, averaged over batches, then over attributes",
        ours="average precision per attribute pooled over the whole test split, then averaged over attributes",
    ),
    Departure(
        name="importance_sampling_grouping",
        stage=EVALUATION,
        metrics=("likelihood",),
        official=(
            "the K·B log-weights, laid out as K blocks of B points, are reshaped to (B, K), so each log-mean-exp "
            "mixes K different test points (B = the test batch, 256)"
        ),
        ours="log-mean-exp over the K samples of each test point (the IWAE estimate per point)",
    ),
    Departure(
        name="mixture_proposal_density",
        stage=EVALUATION,
        metrics=("likelihood",),
        official="a mixture proposal's density is that of the single component each sample was drawn from",
        ours="the full mixture density (balance-heuristic weights: unbiased, lower variance)",
    ),
)

#: The registry by switch name.
BY_NAME: dict[str, Departure] = {d.name: d for d in DEPARTURES}


def corrected() -> dict[str, str]:
    """Every switch at ``corrected``: the pipeline's own protocol."""
    return {d.name: CORRECTED for d in DEPARTURES}


def reference_exact() -> dict[str, str]:
    """Every switch at ``reference``: the official code's computation."""
    return {d.name: REFERENCE for d in DEPARTURES}


#: The protocols a configuration can run (config key ``protocols``), in the order tables list them:
#: ``corrected`` uses the ``departures:`` block, ``reference-exact`` every switch at ``reference``.
CORRECTED_PROTOCOL = "corrected"
REFERENCE_EXACT_PROTOCOL = "reference-exact"
PROTOCOLS = (CORRECTED_PROTOCOL, REFERENCE_EXACT_PROTOCOL)
#: What each protocol computes, in words (table captions, the summary).
PROTOCOL_DESCRIPTIONS = {
    CORRECTED_PROTOCOL: "the pipeline's corrections of the official code, as the departures block sets them",
    REFERENCE_EXACT_PROTOCOL: "every departure switch at reference, the official code's computation",
}


def protocol_switches(protocol: str, configured: Mapping[str, str]) -> dict[str, str]:
    """The switch set of ``protocol``: the configured ``departures`` block, or every switch at ``reference``.

    The reference-exact set is derived, never configured, so no setting can make a
    "reference-exact" run depart from the official computation.
    """
    if protocol == CORRECTED_PROTOCOL:
        return dict(configured)
    if protocol == REFERENCE_EXACT_PROTOCOL:
        return reference_exact()
    raise UserError(f"unknown protocol '{protocol}': use one of {', '.join(PROTOCOLS)} (config key 'protocols')")


def check_protocol(protocol: str, switches: Mapping[str, str], where: str) -> None:
    """Refuse a job whose switches contradict its protocol: a reference-exact job runs no switch at ``corrected``."""
    if protocol not in PROTOCOLS:
        raise UserError(f"{where}: unknown protocol '{protocol}' (use {', '.join(PROTOCOLS)})")
    corrected_here = [name for name, value in switches.items() if value != REFERENCE]
    if protocol == REFERENCE_EXACT_PROTOCOL and corrected_here:
        raise UserError(
            f"{where}: a {REFERENCE_EXACT_PROTOCOL} job must run every departure at {REFERENCE}, but "
            f"'{corrected_here[0]}' is {switches[corrected_here[0]]!r}; take its switches from "
            "mmjsd.core.departures.protocol_switches"
        )


def comparison_protocol(protocols: Sequence[str]) -> str:
    """The protocol whose runs are set beside the paper: reference-exact when it ran (like for like), else corrected."""
    return REFERENCE_EXACT_PROTOCOL if REFERENCE_EXACT_PROTOCOL in protocols else CORRECTED_PROTOCOL


def flipped(value: str) -> str:
    """The other value of a switch."""
    return REFERENCE if value == CORRECTED else CORRECTED


def check_switches(switches: Any, path: str, stage: str | None = None, complete: bool = False) -> dict[str, str]:
    """``switches`` as a plain dict after checking every name and value; UserError naming ``path.<name>`` otherwise.

    With ``stage`` every name must be a departure of that stage; with ``complete`` every
    departure (of that stage) must be present.
    """
    if not isinstance(switches, Mapping):
        raise UserError(f"config key '{path}' must be a mapping of departure name to {' or '.join(VALUES)}")
    allowed = [d.name for d in DEPARTURES if stage is None or d.stage == stage]
    for name, value in switches.items():
        if name not in allowed:
            raise UserError(
                f"unknown departure '{path}.{name}' (allowed here: {', '.join(allowed)}); see docs/departures.md"
            )
        if value not in VALUES:
            raise UserError(f"config key '{path}.{name}' must be one of {', '.join(VALUES)}, got {value!r}")
    if complete:
        missing = [name for name in allowed if name not in switches]
        if missing:
            raise UserError(
                f"config key '{path}.{missing[0]}' is missing; every departure needs a value ({' or '.join(VALUES)})"
            )
    return dict(switches)


def training_switches(
    switches: Mapping[str, str], dataset: str, objective: str, modality_specific: bool, hparams: Mapping[str, Any]
) -> dict[str, str]:
    """The values of the training departures that can change a run (the run's ``TrainConfig.departures``)."""
    return {
        d.name: switches[d.name] for d in DEPARTURES if d.acts_on_run(dataset, objective, modality_specific, hparams)
    }


def metric_departures(dataset: str, metric: str) -> list[str]:
    """Names of the evaluation departures that can change ``metric`` on ``dataset``, in registry order."""
    return [d.name for d in DEPARTURES if d.acts_on_metric(dataset, metric)]


def metric_switches(switches: Mapping[str, str], dataset: str, metric: str) -> dict[str, str]:
    """The values of the evaluation departures that can change ``metric`` on ``dataset`` (its job's ``departures``)."""
    return {name: switches[name] for name in metric_departures(dataset, metric)}
