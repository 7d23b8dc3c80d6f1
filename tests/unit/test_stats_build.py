"""Statistics in a build, a resumed build and `qkatlas stats`, on tiny random-init models."""

import csv
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from qkatlas.build import build
from qkatlas.stats import STATISTICS, VERSION
from qkatlas.stats_run import stats_stage
from qkatlas.store import Atlas

CLI = [sys.executable, "-m", "qkatlas"]


def test_a_build_stores_every_heads_statistics_and_the_head_map(tiny_text_atlas):
    atlas = Atlas(tiny_text_atlas)
    assert atlas.manifest.stages == {"capture": "done", "stats": "done"}
    table = atlas.stats_table()
    assert table.num_rows == atlas.total_heads == 8
    assert table.column_names == ["layer", "head", "kv_head", "kind", "label", *STATISTICS]
    assert atlas.stats_meta()["version"] == VERSION
    m = atlas.headmap()
    assert m["coords"].shape == (8, 2) and m["distance"].shape == (8, 8)
    np.testing.assert_allclose(m["distance"], m["distance"].T)
    assert atlas.induction().shape == (2, 4)  # measured at capture: tiny GPT-2 is causal


def test_random_init_does_not_copy_induction_is_low(tiny_text_atlas):
    assert Atlas(tiny_text_atlas).induction().max() < 0.1


def test_a_resumed_build_computes_missing_statistics_without_capturing_again(settings, tmp_path):
    local = settings.with_(data_dir=tmp_path)
    path = build(local, "tiny-llama", "default", limit=4, methods=["pca"], dims=[2])
    atlas = Atlas(path)
    before = atlas.stats_table()
    vectors = (atlas.path / "vectors" / "q_L00.npy").stat().st_mtime_ns
    for name in ("stats.parquet", "stats.json", "headmap.npz", "induction.npy"):
        (atlas.path / name).unlink()
    build(local, "tiny-llama", "default", limit=4, methods=["pca"], dims=[2])
    again = Atlas(path)
    assert (again.path / "vectors" / "q_L00.npy").stat().st_mtime_ns == vectors  # capture was not redone
    # induction was measured again by loading the model: the same seeded input, the same scores
    assert again.stats_table().equals(before)


def test_statistics_of_an_older_definition_are_computed_again(settings, tmp_path, tiny_bert_atlas):
    copy = tmp_path / tiny_bert_atlas.name
    shutil.copytree(Atlas(tiny_bert_atlas).path, copy)
    meta = json.loads((copy / "stats.json").read_text())
    (copy / "stats.json").write_text(json.dumps({**meta, "version": VERSION - 1}))
    assert not Atlas(copy).has_stats(VERSION)
    assert stats_stage(settings, copy).has_stats(VERSION)


def _cli(*args, data_dir):
    return subprocess.run(CLI + ["--data-dir", str(data_dir), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ})


def test_cli_exports_the_statistics_as_csv_and_parquet(tiny_bert_atlas, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(Atlas(tiny_bert_atlas).path, data / tiny_bert_atlas.name)
    for name in ("stats.parquet", "stats.json", "headmap.npz"):
        (data / tiny_bert_atlas.name / name).unlink()  # `qkatlas stats` computes them first
    r = _cli("stats", tiny_bert_atlas.name, data_dir=data)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 8 and list(rows[0]) == ["layer", "head", "kv_head", "kind", "label", *STATISTICS]
    assert {row["induction"] for row in rows} == {""}  # BERT is not causal
    out = tmp_path / "exports" / "bert.parquet"
    r = _cli("stats", tiny_bert_atlas.name, "--format", "parquet", "--output", str(out), data_dir=data)
    assert r.returncode == 0, r.stderr
    assert str(out) in r.stderr
    table = pq.read_table(out)
    assert table.column("label").to_pylist() == [row["label"] for row in rows]
    assert table.column("entropy").to_pylist() == pytest.approx([float(row["entropy"]) for row in rows])


def test_cli_stats_of_an_unknown_atlas_is_one_error_line(tmp_path):
    r = _cli("stats", "nope", data_dir=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"error: unknown atlas 'nope'; available atlases: none"]
    r = _cli("stats", "nope", "--format", "xls", data_dir=tmp_path)
    assert r.returncode == 2 and "xls" in r.stderr
