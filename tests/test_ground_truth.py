"""Tests for building ground-truth moral vectors and the diagnosis sample."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from moral_indifference.foundations import FOUNDATIONS, SLOTS, TYPICALITY_LEVELS
from moral_indifference.ground_truth import (
    DIAGNOSIS_COLUMNS,
    READERS,
    SOCIAL_CHEM_COLUMNS,
    VECTOR_COLUMNS,
    DiagnosisConfig,
    GroundTruthConfig,
    GroundTruthError,
    SplitConfig,
    assign_splits,
    build_ground_truth,
    draw_diagnosis_sample,
    get_reader,
    moral_vector,
    typicality,
    write_expanded_csv,
    write_ground_truth,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_TSV = REPO_ROOT / "resources" / "demo" / "social-chem-101.demo.tsv"
REAL_HEAD_CSV = Path("/work/shared/data/social-chem/moralmi-val-expanded.head.csv")


# --------------------------------------------------------------------------- helpers


def raw_row(**values: str) -> dict[str, str]:
    """Return a kept raw row (care-harm, judgment 2, agree 4) with the given overrides."""
    row = {column: "x" for column in SOCIAL_CHEM_COLUMNS}
    row.update(
        {
            "m": "1",
            "rot-bad": "0",
            "action": "helping a neighbour",
            "rot-moral-foundations": "care-harm",
            "action-moral-judgment": "2",
            "action-agree": "4",
        }
    )
    row.update({key.replace("_", "-"): value for key, value in values.items()})
    return row


def write_tsv(path: Path, rows: list[dict[str, str]], header: tuple[str, ...] = SOCIAL_CHEM_COLUMNS) -> Path:
    lines = ["\t".join(header)]
    lines += ["\t".join(row[column] for column in header) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tsv_config(path: Path, **overrides: object) -> GroundTruthConfig:
    return GroundTruthConfig(format="social_chem_tsv", path=str(path), **overrides)  # type: ignore[arg-type]


def build_tsv(tmp_path: Path, rows: list[dict[str, str]], **overrides: object) -> pd.DataFrame:
    vectors, _ = build_ground_truth(tsv_config(write_tsv(tmp_path / "sc.tsv", rows), **overrides))
    return vectors


def tiny_rows() -> list[dict[str, str]]:
    """Seven raw rows: three kept (one with two foundations), four filtered out."""
    return [
        raw_row(action_moral_judgment="2", action_agree="3"),  # 0: care 0.75
        raw_row(rot_bad="1"),  # 1: dropped
        raw_row(m="3"),  # 2: dropped
        raw_row(  # 3: cheating and betrayal 0.5
            action="copying homework",
            rot_moral_foundations="fairness-cheating|loyalty-betrayal",
            action_moral_judgment="-1",
            action_agree="4",
        ),
        raw_row(action=""),  # 4: dropped
        raw_row(action_moral_judgment="0", action_agree="4"),  # 5: neutral
        raw_row(action_moral_judgment=""),  # 6: dropped
    ]


# --------------------------------------------------------------------------- typicality rule


@pytest.mark.parametrize(
    ("judgment", "agree", "expected"),
    [
        (2, 4, (1.0, 0.0)),
        (2, 3, (0.75, 0.0)),
        (2, 2, (0.5, 0.0)),
        (2, 1, (0.25, 0.0)),
        (1, 4, (0.5, 0.0)),
        (1, 3, (0.375, 0.0)),
        (1, 2, (0.25, 0.0)),
        (1, 1, (0.125, 0.0)),
        (-1, 1, (0.0, 0.125)),
        (-1, 3, (0.0, 0.375)),
        (-2, 3, (0.0, 0.75)),
        (-2, 4, (0.0, 1.0)),
        (0, 4, (0.0, 0.0)),
        (2, 0, (0.0, 0.0)),
        (-2, 0, (0.0, 0.0)),
    ],
)
def test_typicality_table(judgment: int, agree: int, expected: tuple[float, float]) -> None:
    assert typicality(judgment, agree) == expected


def test_typicality_no_negative_zero() -> None:
    m_virtue, m_vice = typicality(0, 4)
    assert math.copysign(1.0, m_virtue) == 1.0
    assert math.copysign(1.0, m_vice) == 1.0


def test_moral_vector_two_foundations() -> None:
    vector = moral_vector(("care-harm", "sanctity-degradation"), 0.0, 0.375)
    expected = np.zeros(10)
    expected[SLOTS.index("harm")] = 0.375
    expected[SLOTS.index("degradation")] = 0.375
    np.testing.assert_array_equal(vector, expected)


# --------------------------------------------------------------------------- raw TSV


def test_tsv_filters_and_ids(tmp_path: Path) -> None:
    vectors = build_tsv(tmp_path, tiny_rows())
    assert list(vectors.columns) == list(VECTOR_COLUMNS)
    assert vectors["id"].tolist() == [
        "socialchem_000000",
        "socialchem_000003",
        "socialchem_000003",
        "socialchem_000005",
    ]
    assert vectors["row_id"].tolist() == [0, 1, 2, 3]


def test_tsv_filter_counts(tmp_path: Path) -> None:
    vectors = build_tsv(tmp_path, tiny_rows())
    filtered = vectors.attrs["filtered_out"]
    assert filtered["rot_bad"] == 1
    assert filtered["m_not_1"] == 1
    assert filtered["missing_action"] == 1
    assert filtered["missing_action_moral_judgment"] == 1
    assert filtered["missing_rot_moral_foundations"] == 0
    assert filtered["total"] == 4


def test_tsv_expansion_and_slots(tmp_path: Path) -> None:
    vectors = build_tsv(tmp_path, tiny_rows())
    assert vectors["target_dimension"].tolist() == [
        "care-harm",
        "fairness-cheating",
        "loyalty-betrayal",
        "care-harm",
    ]
    assert vectors.loc[0, "care"] == 0.75
    assert vectors.loc[0, "harm"] == 0.0
    assert vectors.loc[0, SLOTS].sum() == 0.75
    for row in (1, 2):
        assert vectors.loc[row, "cheating"] == 0.5
        assert vectors.loc[row, "betrayal"] == 0.5
        assert vectors.loc[row, "fairness"] == 0.0
        assert vectors.loc[row, SLOTS].sum() == 1.0
    assert vectors.loc[3, SLOTS].sum() == 0.0


def test_tsv_typicality_and_polarity(tmp_path: Path) -> None:
    vectors = build_tsv(tmp_path, tiny_rows())
    assert vectors["typicality"].tolist() == [0.75, 0.5, 0.5, 0.0]
    assert vectors["polarity"].tolist() == ["virtue", "vice", "vice", "neutral"]
    assert vectors["m_virtue"].tolist() == [0.75, 0.0, 0.0, 0.0]
    assert vectors["m_vice"].tolist() == [0.0, 0.5, 0.5, 0.0]


def test_tsv_float_scores(tmp_path: Path) -> None:
    vectors = build_tsv(tmp_path, [raw_row(action_moral_judgment="-2.0", action_agree="3.0")])
    assert vectors.loc[0, "harm"] == 0.75


def test_tsv_repeated_foundation(tmp_path: Path) -> None:
    vectors = build_tsv(tmp_path, [raw_row(rot_moral_foundations="care-harm|care-harm")])
    assert len(vectors) == 1


def test_tsv_max_rows(tmp_path: Path) -> None:
    vectors = build_tsv(tmp_path, tiny_rows(), max_rows=2)
    assert vectors["id"].unique().tolist() == ["socialchem_000000", "socialchem_000003"]


@pytest.mark.parametrize(
    ("override", "column", "value"),
    [
        ({"action_moral_judgment": "good"}, "action-moral-judgment", "'good'"),
        ({"action_moral_judgment": "3"}, "action-moral-judgment", "'3'"),
        ({"action_moral_judgment": "1.5"}, "action-moral-judgment", "'1.5'"),
        ({"action_agree": "5"}, "action-agree", "'5'"),
        ({"action_agree": "-1"}, "action-agree", "'-1'"),
        ({"rot_moral_foundations": "care-harm|honesty"}, "rot-moral-foundations", "'honesty'"),
    ],
)
def test_tsv_invalid_value(
    tmp_path: Path, override: dict[str, str], column: str, value: str
) -> None:
    path = write_tsv(tmp_path / "bad.tsv", [raw_row(), raw_row(**override)])
    with pytest.raises(GroundTruthError) as error:
        build_ground_truth(tsv_config(path))
    message = str(error.value)
    assert str(path) in message
    assert "line 3" in message
    assert repr(column) in message
    assert value in message


def test_tsv_column_count(tmp_path: Path) -> None:
    path = write_tsv(tmp_path / "bad.tsv", [raw_row()])
    with path.open("a", encoding="utf-8") as handle:
        handle.write("only\tthree\tfields\n")
    with pytest.raises(GroundTruthError) as error:
        build_ground_truth(tsv_config(path))
    assert "line 3" in str(error.value)
    assert "found 3 tab-separated fields, expected 25" in str(error.value)


def test_tsv_wrong_header(tmp_path: Path) -> None:
    header = tuple("action_text" if name == "action" else name for name in SOCIAL_CHEM_COLUMNS)
    row = raw_row()
    row["action_text"] = row.pop("action")
    path = write_tsv(tmp_path / "bad.tsv", [row], header=header)
    with pytest.raises(GroundTruthError) as error:
        build_ground_truth(tsv_config(path))
    assert "Missing columns: action;" in str(error.value)
    assert "extra columns: action_text." in str(error.value)


def test_tsv_all_filtered(tmp_path: Path) -> None:
    path = write_tsv(tmp_path / "sc.tsv", [raw_row(rot_bad="1")])
    with pytest.raises(GroundTruthError, match="no rows left"):
        build_ground_truth(tsv_config(path))


# --------------------------------------------------------------------------- split


def test_split_fractions() -> None:
    ids = [f"socialchem_{i:06d}" for i in range(200)]
    splits = list(assign_splits(ids, SplitConfig()).values())
    assert splits.count("train") == 160
    assert splits.count("val") == 20
    assert splits.count("test") == 20


def test_split_deterministic() -> None:
    ids = [f"a{i}" for i in range(50)]
    assert assign_splits(ids, SplitConfig(seed=3)) == assign_splits(reversed(ids), SplitConfig(seed=3))


def test_split_seed_changes() -> None:
    ids = [f"a{i}" for i in range(50)]
    assert assign_splits(ids, SplitConfig(seed=3)) != assign_splits(ids, SplitConfig(seed=4))


def test_split_bad_fractions() -> None:
    with pytest.raises(GroundTruthError, match="sum to"):
        SplitConfig(train=0.8, val=0.1, test=0.2)


def test_split_annotation_one_split(tmp_path: Path) -> None:
    rows = [
        raw_row(rot_moral_foundations="care-harm|fairness-cheating|sanctity-degradation")
        for _ in range(60)
    ]
    vectors = build_tsv(tmp_path, rows)
    assert len(vectors) == 180
    assert vectors.groupby("id")["split"].nunique().max() == 1
    assert set(vectors["split"]) == {"train", "val", "test"}
    assert (vectors["split"] == "train").sum() == 48 * 3


# --------------------------------------------------------------------------- diagnosis sample


def demo_vectors() -> pd.DataFrame:
    vectors, _ = build_ground_truth(tsv_config(DEMO_TSV))
    return vectors


def stratum_sizes(frame: pd.DataFrame, foundation: str, kind: str, level: float) -> int:
    chosen = (
        (frame["sampled_dimension"] == foundation)
        & (frame["sample_type"] == kind)
        & np.isclose(frame["score_stratum"], level)
    )
    return int(chosen.sum())


def test_diagnosis_quotas() -> None:
    vectors = demo_vectors()
    sample = draw_diagnosis_sample(vectors, DiagnosisConfig(per_level=2, prototypes=3, neutral=4))
    assert list(sample.columns) == list(DIAGNOSIS_COLUMNS)
    for foundation in FOUNDATIONS:
        for kind in ("virtue", "vice"):
            for level in TYPICALITY_LEVELS:
                expected = 3 if level == 1.0 else 2
                assert stratum_sizes(sample, foundation, kind, level) == expected
        assert stratum_sizes(sample, foundation, "neutral", 0.0) == 4
    assert len(sample) == 5 * (2 * (5 * 2 + 3) + 4)


def test_diagnosis_small_strata_whole() -> None:
    vectors = demo_vectors()
    sample = draw_diagnosis_sample(vectors, DiagnosisConfig(per_level=1000, prototypes=1000, neutral=1000))
    assert len(sample) == len(vectors)


def test_diagnosis_rows_match_vectors() -> None:
    vectors = demo_vectors()
    sample = draw_diagnosis_sample(vectors, DiagnosisConfig(per_level=2, prototypes=3, neutral=4))
    joined = sample.merge(vectors, on="row_id", suffixes=("", "_source"))
    assert (joined["id"] == joined["id_source"]).all()
    assert (joined["sampled_dimension"] == joined["target_dimension"]).all()
    assert (joined["sample_type"] == joined["polarity"]).all()
    assert np.allclose(joined["score_stratum"], joined["typicality"])


def test_diagnosis_deterministic() -> None:
    vectors = demo_vectors()
    config = DiagnosisConfig(per_level=2, prototypes=3, neutral=4, seed=7)
    first = draw_diagnosis_sample(vectors, config)
    second = draw_diagnosis_sample(vectors, config)
    pd.testing.assert_frame_equal(first, second)


def test_diagnosis_seed_changes() -> None:
    vectors = demo_vectors()
    first = draw_diagnosis_sample(vectors, DiagnosisConfig(per_level=2, prototypes=3, neutral=4, seed=1))
    second = draw_diagnosis_sample(vectors, DiagnosisConfig(per_level=2, prototypes=3, neutral=4, seed=2))
    assert first["row_id"].tolist() != second["row_id"].tolist()


def test_diagnosis_dedupes_pairs() -> None:
    vectors = demo_vectors()
    doubled = pd.concat([vectors, vectors], ignore_index=True)
    sample = draw_diagnosis_sample(doubled, DiagnosisConfig(per_level=1000, prototypes=1000, neutral=1000))
    assert len(sample) == len(vectors)
    assert not sample.duplicated(["id", "sampled_dimension"]).any()


# --------------------------------------------------------------------------- expanded CSV


def test_expanded_round_trip(tmp_path: Path) -> None:
    vectors = demo_vectors()
    path = tmp_path / "expanded.csv"
    write_expanded_csv(vectors, path)
    read_back, _ = build_ground_truth(GroundTruthConfig(format="expanded_csv", path=str(path)))
    pd.testing.assert_frame_equal(read_back, vectors, check_like=False)


def test_expanded_resplit(tmp_path: Path) -> None:
    vectors = demo_vectors().assign(split="val")
    path = tmp_path / "expanded.csv"
    write_expanded_csv(vectors, path)
    kept, _ = build_ground_truth(GroundTruthConfig(format="expanded_csv", path=str(path)))
    resplit, _ = build_ground_truth(
        GroundTruthConfig(format="expanded_csv", path=str(path), resplit=True)
    )
    assert set(kept["split"]) == {"val"}
    assert set(resplit["split"]) == {"train", "val", "test"}
    assert resplit.groupby("id")["split"].nunique().max() == 1


EXPANDED_HEADER = "row_id,id,action,rot-moral-foundations,moral_vector,m_virtue,m_vice,target_dimension,split\n"
GOOD_LINE = '0,socialchem_000001,"hurting a friend, on purpose",care-harm,"[0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]",0.0,1.0,care-harm,val\n'


def test_expanded_comma_in_action(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text(EXPANDED_HEADER + GOOD_LINE, encoding="utf-8")
    vectors, _ = build_ground_truth(GroundTruthConfig(format="expanded_csv", path=str(path)))
    assert vectors.loc[0, "action"] == "hurting a friend, on purpose"
    assert vectors.loc[0, "harm"] == 1.0


@pytest.mark.parametrize(
    ("bad_line", "column", "text"),
    [
        (
            '1,socialchem_000002,x,care-harm,"[0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]",0.0,1.0,care-harm,val\n',
            "moral_vector",
            "harm=0.5 (expected 1)",
        ),
        (
            '1,socialchem_000002,x,care-harm,"[0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]",0.0,1.0,care-harm,val\n',
            "moral_vector",
            "expected a list of 10 numbers",
        ),
        (
            '1,socialchem_000002,x,care-harm,"[0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]",0.0,abc,care-harm,val\n',
            "m_vice",
            "'abc'",
        ),
        (
            '1,socialchem_000002,x,care-harm,"[0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]",0.0,1.0,loyalty-betrayal,val\n',
            "target_dimension",
            "not among the listed foundations",
        ),
        (
            '1,socialchem_000002,x,care-harm,"[0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]",0.0,1.0,care-harm,dev\n',
            "split",
            "'dev'",
        ),
    ],
)
def test_expanded_invalid(tmp_path: Path, bad_line: str, column: str, text: str) -> None:
    path = tmp_path / "e.csv"
    path.write_text(EXPANDED_HEADER + GOOD_LINE + bad_line, encoding="utf-8")
    with pytest.raises(GroundTruthError) as error:
        build_ground_truth(GroundTruthConfig(format="expanded_csv", path=str(path)))
    message = str(error.value)
    assert str(path) in message
    assert "line 3" in message
    assert repr(column) in message
    assert text in message


def test_expanded_split_crossing(tmp_path: Path) -> None:
    second = GOOD_LINE.replace("0,socialchem", "1,socialchem", 1).replace(",val\n", ",test\n")
    path = tmp_path / "e.csv"
    path.write_text(EXPANDED_HEADER + GOOD_LINE + second, encoding="utf-8")
    with pytest.raises(GroundTruthError, match="one annotation must stay in one split"):
        build_ground_truth(GroundTruthConfig(format="expanded_csv", path=str(path)))


@pytest.mark.skipif(not REAL_HEAD_CSV.is_file(), reason="reference expanded CSV not present")
def test_expanded_real_head() -> None:
    vectors, diagnosis = build_ground_truth(
        GroundTruthConfig(format="expanded_csv", path=str(REAL_HEAD_CSV))
    )
    assert len(vectors) == 2892
    assert vectors["id"].nunique() == 2333
    assert (vectors["target_dimension"] == "care-harm").sum() == 1171
    assert (vectors["harm"] != 0).sum() == 693
    assert (vectors[list(SLOTS)].sum(axis=1) == 0).sum() == 1148
    assert set(vectors["split"]) == {"val"}
    assert len(diagnosis) > 0


# --------------------------------------------------------------------------- diagnosis JSONL


def diagnosis_record(**overrides: object) -> dict[str, object]:
    record: dict[str, object] = {
        "id": "socialchem_000007",
        "action": "lying to your boss",
        "rot-moral-foundations": "authority-subversion|fairness-cheating",
        "moral_vector": [0, 0, 0, 0.25, 0, 0, 0, 0.25, 0, 0],
        "m_virtue": 0.0,
        "m_vice": 0.25,
        "sampled_dimension": "authority-subversion",
        "sample_type": "vice",
        "score_stratum": 0.25,
    }
    record.update(overrides)
    return record


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_diagnosis_jsonl_is_sample(tmp_path: Path) -> None:
    second = diagnosis_record(
        id="socialchem_000009",
        **{"rot-moral-foundations": "care-harm"},
        moral_vector="[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]",
        m_vice=0.0,
        sampled_dimension="care-harm",
        sample_type="neutral",
        score_stratum=0.0,
    )
    path = write_jsonl(tmp_path / "d.jsonl", [json.dumps(diagnosis_record()), json.dumps(second)])
    vectors, diagnosis = build_ground_truth(GroundTruthConfig(format="diagnosis_jsonl", path=str(path)))
    assert list(diagnosis.columns) == list(DIAGNOSIS_COLUMNS)
    assert diagnosis["id"].tolist() == ["socialchem_000007", "socialchem_000009"]
    assert diagnosis["sample_type"].tolist() == ["vice", "neutral"]
    assert diagnosis["score_stratum"].tolist() == [0.25, 0.0]
    assert vectors["target_dimension"].tolist() == ["authority-subversion", "care-harm"]
    assert vectors.loc[0, "subversion"] == 0.25
    assert vectors.loc[0, "cheating"] == 0.25


def test_diagnosis_jsonl_bad_json(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [json.dumps(diagnosis_record()), "{not json"])
    with pytest.raises(GroundTruthError, match="line 2: invalid JSON"):
        build_ground_truth(GroundTruthConfig(format="diagnosis_jsonl", path=str(path)))


def test_diagnosis_jsonl_missing_key(tmp_path: Path) -> None:
    record = diagnosis_record()
    del record["score_stratum"]
    path = write_jsonl(tmp_path / "d.jsonl", [json.dumps(record)])
    with pytest.raises(GroundTruthError, match="line 1: missing key\\(s\\) score_stratum"):
        build_ground_truth(GroundTruthConfig(format="diagnosis_jsonl", path=str(path)))


def test_diagnosis_jsonl_bad_sample_type(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [json.dumps(diagnosis_record(sample_type="bad"))])
    with pytest.raises(GroundTruthError, match="line 1, column 'sample_type'"):
        build_ground_truth(GroundTruthConfig(format="diagnosis_jsonl", path=str(path)))


# --------------------------------------------------------------------------- config and output


def test_config_from_dict() -> None:
    config = GroundTruthConfig.from_dict(
        {
            "format": "expanded_csv",
            "path": "data.csv",
            "resplit": True,
            "max_rows": 10,
            "split": {"seed": 5},
            "diagnosis": {"per_level": 3, "prototypes": 2},
        }
    )
    assert config.split == SplitConfig(seed=5)
    assert config.diagnosis == DiagnosisConfig(per_level=3, prototypes=2)
    assert config.resplit is True
    assert config.max_rows == 10


def test_config_unknown_key() -> None:
    with pytest.raises(GroundTruthError, match="unknown key\\(s\\) per_leve in ground_truth.diagnosis"):
        GroundTruthConfig.from_dict({"format": "x", "path": "y", "diagnosis": {"per_leve": 3}})


def test_reader_unknown_format() -> None:
    with pytest.raises(GroundTruthError) as error:
        get_reader("social_chem_csv")
    assert "'social_chem_csv'" in str(error.value)
    assert ", ".join(READERS) in str(error.value)


def test_missing_input_file(tmp_path: Path) -> None:
    with pytest.raises(GroundTruthError, match="not found"):
        build_ground_truth(tsv_config(tmp_path / "absent.tsv"))


def test_write_ground_truth(tmp_path: Path) -> None:
    vectors, diagnosis = build_ground_truth(
        tsv_config(write_tsv(tmp_path / "sc.tsv", tiny_rows()), diagnosis=DiagnosisConfig(per_level=1))
    )
    summary = write_ground_truth(vectors, diagnosis, tmp_path / "out")
    written = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert written == summary
    assert summary["annotations"] == 3
    assert summary["rows"] == 4
    assert summary["rows_per_foundation"]["care-harm"] == 2
    assert summary["nonzero_per_slot"]["cheating"] == 2
    assert summary["nonzero_per_slot"]["care"] == 1
    assert summary["filtered_out"]["total"] == 4
    assert summary["diagnosis_rows_per_stratum"]["care-harm/virtue/0.75"] == 1
    assert sum(summary["rows_per_split"].values()) == 4


def test_write_parquet_round_trip(tmp_path: Path) -> None:
    vectors, diagnosis = build_ground_truth(tsv_config(write_tsv(tmp_path / "sc.tsv", tiny_rows())))
    write_ground_truth(vectors, diagnosis, tmp_path / "out")
    read_vectors = pd.read_parquet(tmp_path / "out" / "moral_vectors.parquet")
    read_diagnosis = pd.read_parquet(tmp_path / "out" / "diagnosis_sample.parquet")
    pd.testing.assert_frame_equal(read_vectors, vectors[list(VECTOR_COLUMNS)], check_dtype=False)
    pd.testing.assert_frame_equal(read_diagnosis, diagnosis, check_dtype=False)
    assert str(read_vectors["row_id"].dtype) == "int64"
    assert str(read_vectors["care"].dtype) == "float64"


# --------------------------------------------------------------------------- demo data


def test_demo_file_shape() -> None:
    lines = DEMO_TSV.read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t") == list(SOCIAL_CHEM_COLUMNS)
    assert len(lines) - 1 >= 480
    assert all(len(line.split("\t")) == 25 for line in lines)


def test_demo_coverage_levels() -> None:
    vectors = demo_vectors()
    for foundation in FOUNDATIONS:
        rows = vectors[vectors["target_dimension"] == foundation]
        for pole in ("virtue", "vice"):
            of_pole = rows[rows["polarity"] == pole]
            for level in TYPICALITY_LEVELS:
                assert np.isclose(of_pole["typicality"], level).any(), (foundation, pole, level)


def test_demo_coverage_prototypes() -> None:
    vectors = demo_vectors()
    for slot in SLOTS:
        assert (vectors[slot] == 1.0).sum() >= 12, slot


def test_demo_coverage_neutral_and_multi() -> None:
    vectors = demo_vectors()
    annotations = vectors.drop_duplicates("id")
    assert (vectors["polarity"] == "neutral").sum() >= 40
    assert annotations["rot_moral_foundations"].str.contains("|", regex=False).sum() >= 10


def test_demo_coverage_filtered() -> None:
    filtered = demo_vectors().attrs["filtered_out"]
    for reason in ("rot_bad", "m_not_1", "missing_action", "missing_rot_moral_foundations"):
        assert filtered[reason] > 0, reason
