"""Tests of provenance records: hashes, versions and JSON round trip."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from moral_indifference.provenance import (
    build_record,
    describe_files,
    scheduler_context,
    sha256_file,
    write_record,
)


def test_sha256_matches_hashlib(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"moral" * 1000)
    assert sha256_file(path) == hashlib.sha256(b"moral" * 1000).hexdigest()


def test_describe_files_expands_folders(tmp_path):
    (tmp_path / "sae").mkdir()
    (tmp_path / "sae" / "cfg.json").write_text("{}", encoding="utf-8")
    (tmp_path / "sae" / "centre.npy").write_bytes(b"\x00" * 8)
    described = describe_files([tmp_path / "sae"])
    assert sorted(described) == [str(tmp_path / "sae" / "centre.npy"), str(tmp_path / "sae" / "cfg.json")]
    assert described[str(tmp_path / "sae" / "centre.npy")]["bytes"] == 8


def test_describe_files_marks_missing(tmp_path):
    described = describe_files([tmp_path / "absent.txt"])
    assert described[str(tmp_path / "absent.txt")] == {"sha256": None, "bytes": None}


def test_record_round_trip_keeps_unicode(tmp_path):
    source = tmp_path / "flames.jsonl"
    source.write_text('{"prompt": "偷窃是不道德的吗？"}\n', encoding="utf-8")
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    record = build_record(
        rule="generate_baseline",
        wildcards={"model": "tiny"},
        params={"system_prompt": "你是一个有帮助的助手。", "layers": (1, 2)},
        inputs=[source],
        outputs=[],
        started=start,
        finished=start + dt.timedelta(seconds=2.5),
    )
    path = write_record(record, tmp_path / "prov" / "record.json")
    loaded = json.loads(path.read_text(encoding="utf-8"))
    assert loaded["params"] == {"system_prompt": "你是一个有帮助的助手。", "layers": [1, 2]}
    assert loaded["seconds"] == 2.5
    assert loaded["inputs"][str(source)]["sha256"] == sha256_file(source)
    assert "你是" in path.read_text(encoding="utf-8")


def test_scheduler_context_is_none_outside_slurm():
    assert scheduler_context({"HOME": "/root", "CUDA_VISIBLE_DEVICES": "0"}) is None


def test_scheduler_context_keeps_the_job_variables():
    environ = {
        "SLURM_JOB_ID": "17",
        "SLURM_STEP_ID": "0",
        "SLURM_JOB_PARTITION": "gpu",
        "SLURM_GPUS_ON_NODE": "1",
        "CUDA_VISIBLE_DEVICES": "0",
        "SLURM_CONF": "/etc/slurm/slurm.conf",
        "HOME": "/root",
    }
    assert scheduler_context(environ) == {
        "SLURM_JOB_ID": "17",
        "SLURM_STEP_ID": "0",
        "SLURM_JOB_PARTITION": "gpu",
        "SLURM_GPUS_ON_NODE": "1",
        "CUDA_VISIBLE_DEVICES": "0",
    }
