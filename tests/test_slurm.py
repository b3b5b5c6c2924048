"""The SLURM path end to end, on a real single-node cluster bound to 127.0.0.1.

``scripts/slurm-test-cluster`` installs and starts the cluster (munge, slurmctld, slurmd,
one fake GPU, partitions ``cpu`` and ``gpu``). These tests submit the smoke DAG of
``smoke.py`` through the shipped profile, ``profiles/slurm``, with the workflow profile
``tests/slurm_profile`` on top for what only this cluster needs: squeue status checks,
because the cluster has no accounting database.

They carry the ``slurm`` marker, which plain ``pytest`` deselects. ``make test-slurm`` runs
them as root (the script may install Debian packages and writes /etc/slurm). Without a
cluster they skip, unless ``MI_REQUIRE_SLURM=1`` makes that a failure, as in CI.

The module runs the smoke DAG once through SLURM and once locally, and each scenario
(a failing job, a cancelled job) works on its own copy of the finished SLURM run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from snakemake.utils import update_config

from moral_indifference.workflow import rule_resources
from smoke import DEMO_PROMPTS, REPO, run_snakemake, smoke_config, snakemake_command
from tiny_models import build_tiny_qwen3

pytestmark = pytest.mark.slurm

CLUSTER_SCRIPT = REPO / "scripts" / "slurm-test-cluster"
STATE_DIR = Path(os.environ.get("MI_SLURM_DIR", "/tmp/moral-indifference-slurm"))
CLUSTER_PROFILES = (
    "--profile", str(REPO / "profiles" / "slurm"),
    "--workflow-profile", str(REPO / "tests" / "slurm_profile"),
)
PROFILE_ARGS = (*CLUSTER_PROFILES, "--configfile", "smoke.yaml", "--verbose")
DAEMONS = ("slurmctld", "slurmd", "munged", "slurmstepd", "srun")

#: Resources per rule in the smoke runs: every CPU rule on the default partition, the
#: SAE rules on --gpus, the generation rules on --gres, both in partition "gpu".
SMOKE_RESOURCES = {
    "default": {"mem_mb": 1000, "runtime": 10, "gpu": 0, "cpus_per_task": 1},
    "models": {"mem_mb": 1200, "runtime": 12},
    "activations": {"mem_mb": 2000, "runtime": 20, "cpus_per_task": 2},
    "indifference": {"mem_mb": 1100, "runtime": 11},
    "sae": {"mem_mb": 1500, "runtime": 15, "gpu": 1, "slurm_partition": "gpu"},
    "realign": {"mem_mb": 1600, "runtime": 16, "gpu": 1, "slurm_partition": "gpu"},
    "generation": {
        "mem_mb": 2000, "runtime": 30, "gres": "gpu:1", "slurm_partition": "gpu", "cpus_per_task": 2,
    },
    "judging": {"mem_mb": 1300, "runtime": 13},
    "report": {"mem_mb": 900, "runtime": 9},
}

#: The resource group of every rule that runs a job (rules/*.smk), and whether the
#: model's own resources override it.
RULE_GROUPS = {
    "build_ground_truth": ("ground_truth", False),
    "prepare_model": ("models", False),
    "extract_activations_": ("activations", True),
    "indifference_layer": ("indifference", False),
    "indifference_model": ("report", False),
    "indifference_summary": ("report", False),
    "train_sae": ("sae", False),
    "isolate_features": ("sae", False),
    "realign_sae": ("realign", False),
    "generate_baseline": ("generation", False),
    "generate_steered": ("generation", False),
    "judge_pairwise": ("judging", False),
    "score_rubric": ("judging", False),
    "summarise_flames": ("report", False),
    "report": ("report", False),
}

SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.")
SBATCH_CALL = re.compile(r"sbatch call: (sbatch .*?) --wrap=")


# --- the cluster --------------------------------------------------------------------------


def cluster_script(command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CLUSTER_SCRIPT), command], capture_output=True, text=True, timeout=300, check=False
    )


def daemon_pids() -> dict[str, int]:
    """Return the pids of the cluster's live daemons, read from their pid files."""
    files = {
        "slurmctld": STATE_DIR / "slurmctld.pid",
        "slurmd": STATE_DIR / "slurmd.pid",
        "munged": Path("/run/munge/munged.pid"),
    }
    alive = {}
    for name, path in files.items():
        text = path.read_text().strip() if path.exists() else ""
        if text and Path(f"/proc/{text}").exists():
            alive[name] = int(text)
    return alive


def cluster_listeners() -> list[tuple[str, str]]:
    """Return (process, local address) for each listening TCP socket of SLURM and munge."""
    output = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    listeners = []
    for line in output.splitlines():
        names = re.findall(r'\("([^"]+)",pid=', line)
        if any(name in DAEMONS for name in names):
            listeners.append((",".join(names), line.split()[3]))
    return listeners


def assert_loopback_only(listeners: list[tuple[str, str]]) -> None:
    outside = [(name, address) for name, address in listeners if not address.startswith("127.0.0.1:")]
    assert not outside, f"cluster processes listen beyond 127.0.0.1: {outside}"


@pytest.fixture(scope="module")
def cluster():
    """Start the test cluster, and stop it afterwards unless it was already running."""
    was_running = {"slurmctld", "slurmd"} <= set(daemon_pids())
    if not was_running and os.geteuid() != 0:
        reason = "no SLURM test cluster runs, and starting one needs root: run `make test-slurm` as root"
        if os.environ.get("MI_REQUIRE_SLURM") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    started = cluster_script("start")
    assert started.returncode == 0, started.stderr
    yield
    if not was_running:
        stopped = cluster_script("stop")
        assert stopped.returncode == 0, stopped.stderr
        assert daemon_pids() == {}, "a daemon outlived scripts/slurm-test-cluster stop"


# --- the runs -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_folder(tmp_path_factory) -> Path:
    """Build a run folder with the tiny model, a copy of the demo prompts and the overlay."""
    folder = tmp_path_factory.mktemp("smoke")
    build_tiny_qwen3(folder / "tiny-qwen3")
    shutil.copy(DEMO_PROMPTS, folder / "flames.jsonl")
    config = smoke_config("results", "tiny-qwen3", prompts="flames.jsonl")
    config["resources"] = SMOKE_RESOURCES
    (folder / "smoke.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return folder


def copy_run(source: Path, target: Path) -> Path:
    """Copy a run folder with its Snakemake metadata, keeping modification times."""
    shutil.copytree(source, target, symlinks=True)
    return target


def cluster_environment(**variables: str) -> dict[str, str]:
    """Return this process's environment without SBATCH_* defaults, plus ``variables``."""
    environ = {name: value for name, value in os.environ.items() if not name.startswith("SBATCH_")}
    return environ | variables


def submit(folder: Path, *args: str, timeout: int = 1200) -> subprocess.CompletedProcess:
    """Run the smoke DAG in ``folder`` through SLURM and save the output to run.log."""
    result = run_snakemake(*PROFILE_ARGS, *args, cwd=folder, timeout=timeout, env=cluster_environment())
    (folder / "run.log").write_text(result.stdout + result.stderr, encoding="utf-8")
    return result


@pytest.fixture(scope="module")
def slurm_run(cluster, smoke_folder, tmp_path_factory) -> tuple[Path, str]:
    folder = copy_run(smoke_folder, tmp_path_factory.mktemp("slurm") / "run")
    result = submit(folder)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return folder, output


@pytest.fixture(scope="module")
def local_run(smoke_folder, tmp_path_factory) -> Path:
    folder = copy_run(smoke_folder, tmp_path_factory.mktemp("local") / "run")
    result = run_snakemake("--cores", "2", "--configfile", "smoke.yaml", cwd=folder)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    return folder


def submissions(output: str) -> dict[str, str]:
    """Map the SLURM job id of every job Snakemake submitted to its SLURM log path."""
    return {job: log for _, job, log in SUBMITTED.findall(output)}


def provenance(folder: Path) -> list[dict]:
    records = (folder / "results" / "provenance").rglob("*.json")
    return [json.loads(path.read_text(encoding="utf-8")) for path in records]


def show_job(job_id: str) -> dict[str, str]:
    """Return the fields of ``scontrol show job`` for one job."""
    output = subprocess.run(
        ["scontrol", "show", "job", "--oneliner", job_id], capture_output=True, text=True, check=True
    ).stdout
    return dict(re.findall(r"(\S+?)=(\S*)", output))


def result_paths(folder: Path) -> dict[str, Path]:
    """Return every result file, keyed by its path under results/.

    Logs and provenance records are left out, because they contain times and job ids.
    """
    root = folder / "results"
    paths = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and not relative.startswith(("logs/", "provenance/")):
            paths[relative] = path
    return paths


def results_files(folder: Path, copied_from: Path | None = None) -> dict[str, bytes]:
    """Return every result file's bytes, keyed by its path under results/.

    Paths of the run folder (and of the folder it was copied from) in a file read <run>.
    """
    files = {}
    for relative, path in result_paths(folder).items():
        data = path.read_bytes()
        for run in filter(None, (copied_from, folder)):
            data = data.replace(str(run).encode(), b"<run>")
        files[relative] = data
    return files


# --- the tests ----------------------------------------------------------------------------


def test_cluster_listens_on_loopback_only(cluster):
    listeners = cluster_listeners()
    assert {name for name, _ in listeners} >= {"slurmctld", "slurmd"}
    assert_loopback_only(listeners)


def test_every_job_goes_through_sbatch(slurm_run):
    folder, output = slurm_run
    jobs = submissions(output)
    records = provenance(folder)
    assert len(records) == len(jobs) > 20
    recorded = sorted((record["slurm"] or {}).get("SLURM_JOB_ID", "none") for record in records)
    assert recorded == sorted(jobs), "a step ran outside the SLURM jobs Snakemake submitted"
    for job_id, log in jobs.items():
        assert show_job(job_id)["JobState"] == "COMPLETED"
        assert Path(log).is_file(), f"SLURM log {log} of job {job_id} is missing"


def rule_logs(folder: Path) -> list[str]:
    logs = folder / "results" / "logs"
    return sorted(path.relative_to(logs).as_posix() for path in logs.rglob("*.log"))


def test_slurm_results_equal_local_results(slurm_run, local_run):
    folder, _ = slurm_run
    on_slurm, local = results_files(folder), results_files(local_run)
    assert sorted(on_slurm) == sorted(local)
    differ = [path for path in on_slurm if on_slurm[path] != local[path]]
    assert not differ, f"results differ between the SLURM and the local run: {differ}"
    assert rule_logs(folder) == rule_logs(local_run)


def merged_config(overlay: Path) -> dict:
    """Return the default config with ``overlay`` merged in, as Snakemake merges them."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    update_config(config, yaml.safe_load(overlay.read_text(encoding="utf-8")))
    return config


def expected_resources(config: dict, record: dict) -> dict:
    rule = record["rule"]
    key = next(name for name in RULE_GROUPS if rule == name or (name.endswith("_") and rule.startswith(name)))
    group, per_model = RULE_GROUPS[key]
    model = record["wildcards"].get("model") or record["params"].get("model")
    return rule_resources(config, group, model if per_model else None, environ={})


def minutes(limit: str) -> int:
    """Convert a SLURM time limit such as 00:10:00 or 1-00:00:00 to minutes."""
    days, _, clock = limit.rpartition("-")
    hours, mins, _ = (int(part) for part in clock.split(":"))
    return int(days or 0) * 1440 + hours * 60 + mins


def megabytes(memory: str) -> int:
    number, unit = float(memory[:-1]), memory[-1]
    return round(number * {"M": 1, "G": 1024, "T": 1024**2}[unit])


def test_sbatch_options_follow_the_config(slurm_run):
    folder, output = slurm_run
    config = merged_config(folder / "smoke.yaml")
    calls = {re.search(r"--comment (\S+)", call).group(1): call for call in SBATCH_CALL.findall(output)}
    seen_gpus = seen_gres = 0
    for record in provenance(folder):
        expected = expected_resources(config, record)
        job = show_job(record["slurm"]["SLURM_JOB_ID"])
        label = f"{record['rule']} {record['wildcards']} (job {job['JobId']})"
        call = calls[job["Comment"]]
        assert minutes(job["TimeLimit"]) == expected["runtime"], label
        assert megabytes(job["MinMemoryNode"]) == expected["mem_mb"], label
        assert int(job["CPUs/Task"]) == expected["cpus_per_task"], label
        assert job["Partition"] == expected.get("slurm_partition", "cpu"), label
        assert f"-t {expected['runtime']}" in call, call
        assert f"--mem {expected['mem_mb']}" in call, call
        assert f"--cpus-per-task={expected['cpus_per_task']}" in call, call
        if expected.get("gpu"):
            seen_gpus += 1
            assert f"--gpus={expected['gpu']}" in call, call
            assert job["TresPerJob"] == f"gres:gpu:{expected['gpu']}", label
            assert record["slurm"]["SLURM_GPUS_ON_NODE"] == str(expected["gpu"]), label
        elif expected.get("gres"):
            seen_gres += 1
            assert f"--gres={expected['gres']}" in call, call
            assert job["TresPerNode"] == f"gres:{expected['gres']}", label
            assert record["slurm"]["SLURM_GPUS_ON_NODE"] == expected["gres"].rsplit(":", 1)[-1], label
        else:
            assert "--gpus" not in call, call
            assert "--gres" not in call, call
            assert "SLURM_GPUS_ON_NODE" not in record["slurm"], label
    assert seen_gpus >= 3, "train_sae, isolate_features and realign_sae ask for --gpus"
    assert seen_gres >= 4, "generate_baseline and generate_steered ask for --gres"


def test_failing_job_is_reported_without_partial_output(slurm_run, tmp_path):
    folder = copy_run(slurm_run[0], tmp_path / "run")
    prompts = (folder / "flames.jsonl").read_text(encoding="utf-8").splitlines()
    prompts[2] = '{"dimension": "Fairness", "subcomponent": "歧视"}'
    (folder / "flames.jsonl").write_text("\n".join(prompts) + "\n", encoding="utf-8")
    baseline = folder / "results" / "flames" / "tiny" / "baseline.jsonl"

    result = submit(folder, str(baseline.relative_to(folder)))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Error in rule generate_baseline" in output
    log = "results/logs/flames/tiny/baseline.log"
    assert log in output
    assert "line 3: missing key 'prompt'" in (folder / log).read_text(encoding="utf-8")
    # The profile retries a failed job once, as a new SLURM job.
    failed = submissions(output)
    assert len(failed) == 2
    for job_id in failed:
        assert show_job(job_id)["JobState"] == "FAILED"
    assert not baseline.exists()


def wait_until_running(comment: str, runner: subprocess.Popen, timeout: float = 600) -> str:
    """Poll squeue until the job with ``comment`` runs, and return its SLURM job id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if runner.poll() is not None:
            raise AssertionError(f"snakemake exited ({runner.returncode}) before {comment} ran")
        queue = subprocess.run(
            ["squeue", "-h", "-t", "RUNNING", "-o", "%i %k"], capture_output=True, text=True, check=True
        ).stdout
        for line in queue.splitlines():
            job_id, _, job_comment = line.partition(" ")
            if job_comment == comment:
                return job_id
        time.sleep(0.2)
    raise AssertionError(f"{comment} did not start running within {timeout} s")


def modification_times(folder: Path) -> dict[str, int]:
    return {relative: path.stat().st_mtime_ns for relative, path in result_paths(folder).items()}


def rules_run_since(folder: Path, since: dt.datetime) -> list[str]:
    """Return the rule of every provenance record whose step started after ``since``."""
    return [
        record["rule"]
        for record in provenance(folder)
        if dt.datetime.fromisoformat(record["started"]) > since
    ]


def downstream(records: list[dict], seeds: set[str]) -> set[str]:
    """Return ``seeds`` and every output built from them, following the provenance records."""
    built = set(seeds)
    grown = True
    while grown:
        grown = False
        for record in records:
            if set(record["inputs"]) & built and not set(record["outputs"]) <= built:
                built |= set(record["outputs"])
                grown = True
    return built


def test_cancelled_job_is_redone_alone(slurm_run, tmp_path):
    folder = copy_run(slurm_run[0], tmp_path / "run")
    results = folder / "results"
    # A run stopped part-way: two independent jobs, the SAE and one layer of the control
    # model's indifference, and everything built from them are still to do.
    records = provenance(folder)
    control_layer_000 = {"model": "tiny-random", "layer": "000"}
    seeds = {
        output
        for record in records
        if record["rule"] == "train_sae"
        or (record["rule"] == "indifference_layer" and record["wildcards"] == control_layer_000)
        for output in record["outputs"]
    }
    for output in downstream(records, seeds):
        (folder / output).unlink()
    control_layer = results / "indifference" / "tiny-random" / "layer_000.json"
    assert not control_layer.exists()

    started = dt.datetime.now(dt.timezone.utc)
    command = snakemake_command(*PROFILE_ARGS, "--retries", "0", cwd=folder)
    with (tmp_path / "cancelled.log").open("w", encoding="utf-8") as log:
        runner = subprocess.Popen(
            command, cwd=folder, stdout=log, stderr=subprocess.STDOUT, text=True, env=cluster_environment()
        )
        try:
            job_id = wait_until_running("rule_train_sae_wildcards_tiny_001", runner)
            assert_loopback_only(cluster_listeners())
            subprocess.run(["scancel", job_id], check=True)
            assert runner.wait(timeout=600) != 0
        finally:
            if runner.poll() is None:
                runner.kill()
    cancelled = (tmp_path / "cancelled.log").read_text(encoding="utf-8")
    assert show_job(job_id)["JobState"] == "CANCELLED"
    assert "Error in rule train_sae" in cancelled
    assert not any((results / "sae" / "tiny" / "layer_001").glob("*")), "the cancelled job left output"
    assert control_layer.exists(), "keep-going should have finished the independent job"
    assert "indifference_summary" in rules_run_since(folder, started)

    before = modification_times(folder)
    rerun_started = dt.datetime.now(dt.timezone.utc)
    result = submit(folder, "--retries", "0")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    redone = rules_run_since(folder, rerun_started)
    assert len(redone) == len(submissions(output))
    redone = set(redone)
    assert "train_sae" in redone
    assert "report" in redone
    assert not redone & {"indifference_layer", "indifference_model", "indifference_summary"}
    after = modification_times(folder)
    touched = sorted(path for path, mtime in before.items() if after[path] != mtime)
    assert not touched, f"the rerun rewrote finished results: {touched}"
    assert results_files(folder, copied_from=slurm_run[0]) == results_files(slurm_run[0])


def test_paper_gpu_rule_gets_its_sbatch_options(cluster, tmp_path):
    """A GPU job of config/paper.yaml: the sbatch line carries the config's resources.

    Its inputs are stand-in files. This small cluster rejects the job, because it requests
    more CPUs and memory than the node has, so the test checks the submission line.
    The partition comes from SBATCH_PARTITION, as on a cluster where a user sets it once.
    """
    config = merged_config(REPO / "config" / "paper.yaml")
    model = "qwen3-8b"
    results = tmp_path / config["results"]
    stand_ins = [
        tmp_path / config["ground_truth"]["path"],
        tmp_path / config["flames"]["prompts"],
        results / "ground_truth" / "moral_vectors.parquet",
        results / "ground_truth" / "diagnosis_sample.parquet",
        results / "ground_truth" / "summary.json",
        results / "models" / model / "manifest.json",
    ]
    for age, path in enumerate(stand_ins):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        stamp = time.time() - 100 + age
        os.utime(path, (stamp, stamp))

    target = f"{config['results']}/activations/{model}/index.parquet"
    result = run_snakemake(
        *CLUSTER_PROFILES,
        "--configfile", str(REPO / "config" / "paper.yaml"),
        "--verbose", "--retries", "0", target,
        cwd=tmp_path,
        env=cluster_environment(SBATCH_PARTITION="gpu"),
    )
    output = result.stdout + result.stderr
    (tmp_path / "run.log").write_text(output, encoding="utf-8")
    calls = SBATCH_CALL.findall(output)
    assert len(calls) == 1, output[-6000:]
    expected = rule_resources(config, "activations", model, environ={})
    assert expected["gpu"] >= 1
    for option in (f"-t {expected['runtime']}", f"--mem {expected['mem_mb']}",
                   f"--gpus={expected['gpu']}", f"--cpus-per-task={expected['cpus_per_task']}",
                   "-p gpu", "--comment rule_extract_activations_qwen3_8b"):
        assert option in calls[0], calls[0]
    assert result.returncode != 0
    assert "SLURM sbatch failed" in output
    assert "Batch job submission failed" in output


def test_stop_leaves_no_daemon_and_start_is_repeatable(cluster):
    again = cluster_script("start")
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stderr
    stopped = cluster_script("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert daemon_pids() == {}
    assert cluster_listeners() == []
    assert cluster_script("stop").returncode == 0
    started = cluster_script("start")
    assert started.returncode == 0, started.stderr
    state = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, check=True).stdout
    assert state.split()[0] == "idle"
