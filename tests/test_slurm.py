"""The cluster path: the SLURM profile, the wrapper and a real SLURM run.

The end-to-end test (marked ``slurm``) needs a SLURM the tests can submit to,
e.g. the local single-node one:

    bash .ci/slurm.sh start
    .venv/bin/python -m pytest -m slurm tests/test_slurm.py -v
    bash .ci/slurm.sh stop

It is skipped, with the reason, when ``sinfo`` is missing or no node is idle.
It copies the project into ``tmp_path`` and runs

    python -m snakemake --workflow-profile <copy>/workflow/profiles/slurm ...

then checks that every non-local job went through sbatch (executor log lines,
the SLURM job table, the per-job SLURM logs) and that the targets exist.

What runs: ``PROJECT_TARGETS`` of the copied project on the CI preset. For a
one-off run of other targets set MMJSD_SLURM_TEST_TARGETS (space separated) and
optionally MMJSD_SLURM_TEST_CONFIGFILE (default PROJECT_CONFIGFILE).

The other tests need no running SLURM: they render the profile under several
settings, check that every GPU rule of the workflow is mapped in the profile,
and check the wrapper's refusal of a missing profile.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import copy_project
from mmjsd.gpu_slots import JOBS_PER_GPU_CHOICES, packed_training_group

ROOT = Path(__file__).resolve().parents[1]
PROFILE_REL = Path("workflow/profiles/slurm")
LOCAL_SLURM_CONF = Path(os.environ.get("MMJSD_SLURM_DIR", "/tmp/mmjsd-slurm")) / "etc/slurm.conf"

#: Targets of the end-to-end SLURM run of the *project* workflow (paths
#: relative to the repository root; they should cover data, train, evaluate and
#: report on the CI preset).
PROJECT_TARGETS: list[str] = [
    # data (acquire_raw x2, build_dataset) -> train -> evaluate -> report (training_curves):
    # one path through every stage, kept short because each SLURM round trip costs seconds
    "results/runs/corrected/mnist_svhn_text/mmjsd/seed0/metrics/latent_probe.json",
    "results/figures/corrected/training_curves_mnist_svhn_text_mmjsd.png",
]
#: Config file of the project run, relative to the repository root.
PROJECT_CONFIGFILE = "workflow/presets/ci.yaml"
#: Wall-clock limit of the snakemake run (seconds).
RUN_TIMEOUT_S = 600
#: First status check after this many seconds (plugin default 40). A job whose
#: check misses it is checked again 10 s later, then 20 s, ...
STATUS_CHECK_S = 10

SUBMITTED_RE = re.compile(r"^Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (.+)\)\.$", re.M)
REMOTE_RULE_RE = re.compile(r"^rule (\w+):$", re.M)
#: A group job's submission (its id is a UUID)
SUBMITTED_GROUP_RE = re.compile(
    r"^Job ([0-9a-f-]{36}) has been submitted with SLURM jobid (\d+) \(log: (.+)\)\.$", re.M
)


# --------------------------------------------------------------------------- helpers


def project_targets() -> list[str]:
    return os.environ.get("MMJSD_SLURM_TEST_TARGETS", "").split() or list(PROJECT_TARGETS)


def project_configfile() -> str:
    return os.environ.get("MMJSD_SLURM_TEST_CONFIGFILE") or PROJECT_CONFIGFILE


def slurm_env() -> dict[str, str]:
    """Environment for SLURM clients: finds the local test cluster's config
    when neither SLURM_CONF nor /etc/slurm/slurm.conf points anywhere."""
    env = dict(os.environ)
    if "SLURM_CONF" not in env and not Path("/etc/slurm/slurm.conf").exists() and LOCAL_SLURM_CONF.exists():
        env["SLURM_CONF"] = str(LOCAL_SLURM_CONF)
    return env


def run_cmd(cmd: list[str], env: dict[str, str], timeout: float = 30, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, **kw)


def slurm_or_skip(env: dict[str, str], wait_s: float = 15) -> None:
    """Skip unless sinfo answers and a node is idle (or partly free) and
    responding; waits up to wait_s for a node that is still registering."""
    if shutil.which("sinfo") is None:
        pytest.skip("SLURM not available: no 'sinfo' on PATH (local test cluster: bash .ci/slurm.sh start)")
    deadline = time.monotonic() + wait_s
    while True:
        try:
            res = run_cmd(["sinfo", "--noheader", "--format=%n %t"], env)
        except subprocess.TimeoutExpired:
            pytest.skip("SLURM not available: sinfo timed out")
        if res.returncode != 0:
            pytest.skip(
                f"SLURM not reachable: sinfo failed: {res.stderr.strip()[-300:]} "
                "(local test cluster: bash .ci/slurm.sh start)"
            )
        # compact states: "idle", "mix"; a trailing "*" means not responding
        states = [line.split()[1] for line in res.stdout.splitlines() if len(line.split()) == 2]
        if any(state in ("idle", "mix") for state in states):
            return
        if time.monotonic() > deadline:
            pytest.skip(f"SLURM has no idle node (sinfo: {res.stdout.strip() or 'no nodes'})")
        time.sleep(1)


def cluster_has_gpus(env: dict[str, str]) -> bool:
    res = run_cmd(["sinfo", "--noheader", "--format=%G"], env)
    return res.returncode == 0 and "gpu" in res.stdout


def accounting_disabled(env: dict[str, str]) -> bool:
    res = run_cmd(["scontrol", "show", "config"], env)
    return "accounting_storage/none" in res.stdout


def render_profile(monkeypatch, **settings: str) -> dict:
    """The profile as snakemake's profile reader turns it into CLI arguments,
    with exactly the given MMJSD_SLURM_* settings in the environment."""
    from snakemake.profiles import ProfileConfigFileParser

    for name in list(os.environ):
        if name.startswith("MMJSD_SLURM_"):
            monkeypatch.delenv(name)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    with open(ROOT / PROFILE_REL / "profile.yaml") as stream:
        return dict(ProfileConfigFileParser().parse(stream))


# --------------------------------------------------------------------------- profile (no SLURM needed)


def test_profile_defaults_need_no_site_settings(monkeypatch):
    args = render_profile(monkeypatch)
    assert args["executor"] == "slurm"
    assert args["retries"] == "2"
    assert args["keep-going"] == "True" and args["rerun-incomplete"] == "True" and args["keep-incomplete"] == "True"
    assert args["default-resources"] == ["mem_mb=4000 * attempt", "runtime=60 * attempt"]
    # training jobs ask for their GPU as a string gres, which k packed members share instead of adding up
    assert args["set-resources"] == ["train:gpu=0", "train:gres='gpu:1'"]
    # every packing a GPU's slot units allow, e.g. MNIST-SVHN-Text's jobs_per_gpu 4: four members per packed job
    assert "train_4_per_gpu=4" in args["group-components"]
    assert [c.split("=")[0] for c in args["group-components"]] == [
        packed_training_group(k) for k in JOBS_PER_GPU_CHOICES if k > 1
    ]
    # unset settings leave no trace (no literal "$VAR")
    assert "slurm-status-command" not in args
    assert "$" not in repr(args)


def test_profile_maps_site_settings(monkeypatch):
    args = render_profile(
        monkeypatch,
        MMJSD_SLURM_ACCOUNT="proj1",
        MMJSD_SLURM_PARTITION="all",  # a name that is also a Python builtin
        MMJSD_SLURM_GPU_PARTITION="gpu",
        MMJSD_SLURM_GPU_MODEL="a100",
        MMJSD_SLURM_CPUS_PER_GPU="8",
        MMJSD_SLURM_GPU_CONSTRAINT="a100|h100",
        MMJSD_SLURM_STATUS_COMMAND="squeue",
        MMJSD_SLURM_JOBS="7",
    )
    assert args["jobs"] == "7"
    assert args["slurm-status-command"] == "squeue"
    assert "slurm_account='proj1'" in args["default-resources"]
    assert "slurm_partition='all'" in args["default-resources"]
    train = sorted(a.split(":", 1)[1] for a in args["set-resources"] if a.startswith("train:"))
    assert train == ["constraint='a100|h100'", "cpus_per_gpu=8", "gpu=0", "gres='gpu:a100:1'", "slurm_partition='gpu'"]
    evaluate = sorted(a.split(":", 1)[1] for a in args["set-resources"] if a.startswith("evaluate:"))
    assert evaluate == ["constraint='a100|h100'", "cpus_per_gpu=8", "gpu_model='a100'", "slurm_partition='gpu'"]


def test_profile_gres_and_no_gpu_modes(monkeypatch):
    args = render_profile(monkeypatch, MMJSD_SLURM_GPU_FLAG="gres", MMJSD_SLURM_GPU_MODEL="v100")
    train = sorted(a.split(":", 1)[1] for a in args["set-resources"] if a.startswith("train:"))
    assert train == ["gpu=0", "gres='gpu:v100:1'"]  # never --gpus and --gres together

    args = render_profile(
        monkeypatch,
        MMJSD_SLURM_NO_GPU="1",
        MMJSD_SLURM_GPU_MODEL="v100",
        MMJSD_SLURM_CPUS_PER_GPU="4",
        MMJSD_SLURM_PARTITION="debug",
    )
    train = sorted(a.split(":", 1)[1] for a in args["set-resources"] if a.startswith("train:"))
    assert train == ["gpu=0", "slurm_partition='debug'"]


def test_profile_rejects_bad_values(monkeypatch):
    from configargparse import ConfigFileParserException

    with pytest.raises(ConfigFileParserException, match="MMJSD_SLURM_CPUS_PER_GPU must be an integer"):
        render_profile(monkeypatch, MMJSD_SLURM_CPUS_PER_GPU="eight")
    with pytest.raises(ConfigFileParserException, match="MMJSD_SLURM_GPU_FLAG must be one of"):
        render_profile(monkeypatch, MMJSD_SLURM_GPU_FLAG="gpu")


def test_gpu_rules_listed_in_slurm_profile(monkeypatch, tmp_path):
    """Every rule of the project workflow that requests a GPU must get the
    profile's GPU mapping (partition, model, ...); a renamed rule would
    silently lose it. The paper config (device auto) is used: the CI preset pins the CPU
    and so asks for no GPU at all."""
    args = render_profile(monkeypatch, MMJSD_SLURM_NO_GPU="1")
    mapped = {a.split(":", 1)[0] for a in args["set-resources"]}

    wd = copy_project(tmp_path / "wf")
    cmd = [sys.executable, "-m", "snakemake", "-n", "--forceall", "--cores", "1"]
    res = run_cmd(cmd, dict(os.environ), timeout=300, cwd=wd)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    gpu_rules = set()
    # a packed job's members are printed indented under "Group job ...", so a block starts at any rule line
    for block in re.split(r"\n(?=\s*(?:local)?rule \w+:)", res.stdout):
        head = re.match(r"\s*(?:local)?rule (\w+):", block)
        if head and re.search(r"^\s+resources:.*\bgpu=[1-9]", block, re.M):
            gpu_rules.add(head.group(1))
    assert gpu_rules, "the dry run shows no rule with gpu>=1: has the output format changed?\n" + res.stdout[-2000:]
    missing = sorted(gpu_rules - mapped)
    assert not missing, f"GPU rules missing from gpu_rules in {PROFILE_REL}/profile.yaml: {missing}"


def test_packed_training_job_asks_for_one_gpu(tmp_path):
    """The paper config's MST training jobs (4 per GPU) go to SLURM 4 to a packed job: with a stub sbatch that logs
    its arguments, 5 training jobs make one sbatch of 4 members asking for ONE GPU (the string gres; integer gpu
    requests of the members would add up to 4), their summed memory and CPUs and one member's time, and one of 1.
    The job's own snakemake gets the group settings, without which it would run the members one after another."""
    wd = copy_project(tmp_path / "wf")
    # existing inputs, older than nothing that needs them: only the training jobs are to run
    for rel in ("results/manifests/mnist.json", "results/manifests/svhn.json", "results/datasets/mnist_svhn_text.h5"):
        (wd / rel).parent.mkdir(parents=True, exist_ok=True)
        (wd / rel).write_text("")
        time.sleep(0.01)
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "sbatch").write_text('#!/bin/sh\necho "$@" >> "$SBATCH_ARGS_LOG"\necho "sbatch: error: stub" >&2\nexit 1\n')
    (stub / "sbatch").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MMJSD_SLURM_", "SNAKEMAKE_PROFILE"))}
    env.update(
        SBATCH_ARGS_LOG=str(tmp_path / "sbatch.log"),
        MMJSD_SLURM_ACCOUNT="proj",
        MMJSD_SLURM_PARTITION="gpu",
        MMJSD_SLURM_GPU_MODEL="h100",
        PATH=os.pathsep.join([str(stub), str(Path(sys.executable).parent), env["PATH"]]),
    )
    targets = [
        f"results/runs/corrected/mnist_svhn_text/{variant}/seed0/model.pt"
        for variant in ("mvae", "mmvae", "mmjsd", "mopoe")
    ]
    targets.append("results/runs/corrected/mnist_svhn_text/mmjsd/seed1/model.pt")
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--workflow-profile",
        str(wd / PROFILE_REL),
        "--retries",
        "0",
        "--latency-wait",
        "1",
        "--slurm-init-seconds-before-status-checks",
        "1",
        *targets,
    ]
    run_cmd(cmd, env, timeout=300, cwd=wd)
    calls = sorted((tmp_path / "sbatch.log").read_text().splitlines(), key=len, reverse=True)
    assert len(calls) == 2, calls
    for call, members in zip(calls, (4, 1), strict=True):
        assert "--comment rule_train_4_per_gpu_train" in call
        assert call.count("'train:protocol=corrected,dataset=mnist_svhn_text,") == members
        assert f" --mem {6000 * members} " in call and f" --cpus-per-task={members} " in call and " -t 90 " in call
        assert " --gres=gpu:h100:1 " in call and "--gpus" not in call
        assert "--group-components 'train_2_per_gpu=2' 'train_3_per_gpu=3' 'train_4_per_gpu=4'" in call


def test_wrapper_refuses_missing_profile(tmp_path):
    env = dict(os.environ, MMJSD_SLURM_PROFILE=str(tmp_path / "no-such-profile"))
    res = run_cmd(["bash", str(ROOT / "scripts/run_slurm.sh"), "-n"], env, cwd=tmp_path)
    assert res.returncode == 2
    assert "workflow profile directory not found" in res.stderr


def test_wrapper_uses_the_profile(tmp_path):
    if shutil.which("sbatch") is None:
        pytest.skip("no sbatch on PATH: the wrapper refuses to run without SLURM clients")
    wd = copy_project(tmp_path / "wf")
    env = dict(os.environ, PYTHON=sys.executable)
    env.pop("MMJSD_SLURM_PROFILE", None)
    res = run_cmd(["bash", str(wd / "scripts/run_slurm.sh"), "-n", "--forceall"], env, timeout=300, cwd=wd)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert f"Using workflow specific profile {wd / PROFILE_REL} for setting default command line arguments." in out


# --------------------------------------------------------------------------- real SLURM


@pytest.mark.slurm
def test_workflow_runs_through_slurm(tmp_path):
    env = slurm_env()
    slurm_or_skip(env)

    wd = copy_project(tmp_path / "wf")
    targets = project_targets()
    cmd = [sys.executable, "-m", "snakemake", "--workflow-profile", str(wd / PROFILE_REL)]
    if (wd / project_configfile()).exists():
        cmd += ["--configfile", str(wd / project_configfile())]
    cmd += [
        "--slurm-init-seconds-before-status-checks",
        str(STATUS_CHECK_S),
        "--slurm-keep-successful-logs",  # evidence below; the plugin deletes them otherwise
        *targets,
    ]
    env.pop("SNAKEMAKE_PROFILE", None)  # no user/site global profile in the test
    # jobs inherit PATH (sbatch --export=ALL): their `python -m mmjsd...` must be this venv's
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    if not cluster_has_gpus(env):
        env["MMJSD_SLURM_NO_GPU"] = "1"  # GPU rules are submitted without --gpus
    if accounting_disabled(env):
        env["MMJSD_SLURM_STATUS_COMMAND"] = "squeue"  # sacct cannot answer

    t0 = time.monotonic()
    try:
        res = subprocess.run(cmd, cwd=wd, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        pytest.fail(
            f"snakemake on SLURM did not finish in {RUN_TIMEOUT_S}s; squeue / "
            f"'bash .ci/slurm.sh logs' may tell why. Output tail:\n{out[-4000:]}"
        )
    elapsed = time.monotonic() - t0
    out = res.stdout + res.stderr
    report = f"command: {' '.join(cmd)}\nexit {res.returncode} after {elapsed:.0f}s; output tail:\n{out[-6000:]}"
    assert res.returncode == 0, report

    # 1. the profile was used (a wrong path is silently ignored by snakemake)
    assert f"Using workflow specific profile {wd / PROFILE_REL} for setting default command line arguments." in out, (
        report
    )

    # 2. every non-local job was submitted with sbatch, none ran on the head
    submitted = SUBMITTED_RE.findall(out)
    remote_rules = REMOTE_RULE_RE.findall(out)
    assert submitted, "no job was submitted to SLURM\n" + report
    assert len(submitted) == len(remote_rules), (
        f"{len(remote_rules)} remote jobs but {len(submitted)} SLURM submissions\n" + report
    )
    slurm_ids = [sid for _, sid, _ in submitted]
    assert len(set(slurm_ids)) == len(slurm_ids)

    # 3. SLURM itself knows these jobs as completed (MinJobAge keeps finished
    #    jobs visible to squeue; the local cluster sets it to 600 s)
    res_q = run_cmd(["squeue", "--states=all", "--noheader", "--format=%i|%T", "--jobs=" + ",".join(slurm_ids)], env)
    states = dict(line.split("|", 1) for line in res_q.stdout.split() if "|" in line)
    assert states == dict.fromkeys(slurm_ids, "COMPLETED"), (
        f"squeue: rc={res_q.returncode} {res_q.stdout} {res_q.stderr}\n" + report
    )

    # 4. each job left its SLURM log, written by the job's own snakemake
    for _, sid, log in submitted:
        log_path = Path(log.replace("%j", sid))
        assert log_path.is_file(), f"missing SLURM log {log_path}"
        assert wd / ".snakemake/slurm_logs" in log_path.parents
        assert "1 of 1 steps (100%) done" in log_path.read_text(errors="replace"), log_path

    # 5. the outputs exist; the fixture's outputs name the SLURM job that made them
    for rel in targets:
        assert (wd / rel).is_file(), f"missing output {rel}\n" + report


@pytest.mark.slurm
def test_packed_training_runs_members_at_once_and_reruns_only_unfinished_ones(tmp_path):
    """Two MST training runs with jobs_per_gpu 2 (device auto, one simulated GPU: CUDA_VISIBLE_DEVICES=0) on the
    local SLURM: one sbatch runs both at once, each holding half of the allocation's GPU. One member is made to
    fail (a directory where its checkpoint goes, so its first save fails); the packed job fails and, with one
    retry, is resubmitted whole: the finished member then rewrites its outputs from the final checkpoint it kept
    instead of training again. The run fails; the finished member's outputs stay. After the obstacle is gone, the
    next run submits the failed member alone, and its success removes the kept checkpoints."""
    env = slurm_env()
    slurm_or_skip(env)
    wd = copy_project(tmp_path / "wf")
    (wd / "pack.yaml").write_text("device: auto\nresources:\n  mnist_svhn_text:\n    jobs_per_gpu: 2\n")
    runs = {
        variant: Path(f"results/runs/corrected/mnist_svhn_text/{variant}/seed0") for variant in ("mmjsd", "mopoe-ms")
    }
    obstacle = wd / "results/checkpoints/corrected/mnist_svhn_text/mopoe-ms/seed0/last.pt"
    obstacle.mkdir(parents=True)
    env.pop("SNAKEMAKE_PROFILE", None)
    env.update(
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        CUDA_VISIBLE_DEVICES="0",
        MMJSD_GPU_SLOT_DIR=str(tmp_path / "slots"),
    )
    if not cluster_has_gpus(env):
        env["MMJSD_SLURM_NO_GPU"] = "1"
    if accounting_disabled(env):
        env["MMJSD_SLURM_STATUS_COMMAND"] = "squeue"
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--workflow-profile",
        str(wd / PROFILE_REL),
        "--configfile",
        str(wd / PROJECT_CONFIGFILE),
        str(wd / "pack.yaml"),
        "--slurm-init-seconds-before-status-checks",
        str(STATUS_CHECK_S),
        "--retries",
        "{retries}",
        *(str(run / "model.pt") for run in runs.values()),
    ]

    first = run_cmd([arg.format(retries=1) for arg in cmd], env, timeout=RUN_TIMEOUT_S, cwd=wd)
    out = first.stdout + first.stderr
    assert first.returncode != 0, out[-4000:]
    packed = [(sid, log) for _, sid, log in SUBMITTED_GROUP_RE.findall(out) if "/group_train_2_per_gpu_train/" in log]
    assert len(packed) == 2, out[-4000:]  # the pack, then the pack again (the retry)
    inner = Path(packed[0][1].replace("%j", packed[0][0])).read_text(errors="replace")
    assert "Execute 2 jobs..." in inner, inner[-4000:]  # the allocation's snakemake started both members together
    slot_lines = {
        v: (wd / f"results/logs/train/corrected/mnist_svhn_text/{v}/seed0.log").read_text().splitlines()[0]
        for v in runs
    }
    assert all(
        re.fullmatch(r"gpu_slots: \S+ \S+ GPU 0, 12 of 24 units, after 0 s", line) for line in slot_lines.values()
    ), slot_lines
    assert (wd / runs["mmjsd"] / "model.pt").is_file() and not (wd / runs["mopoe-ms"] / "model.pt").exists()
    kept = (wd / runs["mmjsd"] / "model.pt").stat().st_mtime_ns
    # the retry's log: the finished member resumed after its last epoch (the CI preset trains 1)
    retried = (wd / "results/logs/train/corrected/mnist_svhn_text/mmjsd/seed0.log").read_text()
    assert "resuming mnist_svhn_text/mmjsd seed 0 after epoch 1" in retried, retried[-3000:]
    kept_checkpoint = wd / "results/checkpoints/corrected/mnist_svhn_text/mmjsd/seed0/last.pt"
    assert kept_checkpoint.is_file()

    obstacle.rmdir()
    second = run_cmd([arg.format(retries=0) for arg in cmd], env, timeout=RUN_TIMEOUT_S, cwd=wd)
    out = second.stdout + second.stderr
    assert second.returncode == 0, out[-4000:]
    assert re.findall(r"wildcards: (.+)", out) == [
        "protocol=corrected, dataset=mnist_svhn_text, variant=mopoe-ms, seed=0"
    ], out[-4000:]
    assert len(SUBMITTED_GROUP_RE.findall(out)) == 1 and not SUBMITTED_RE.findall(out)
    assert (wd / runs["mopoe-ms"] / "model.pt").is_file()
    assert (wd / runs["mmjsd"] / "model.pt").stat().st_mtime_ns == kept
    assert not list((wd / "results/checkpoints").rglob("last.pt"))  # the successful run removed the kept ones
