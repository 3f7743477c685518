"""Exports for verl and EasyR1, read back as each trainer reads them (pandas and datasets),
and rewarded by the reward module as each trainer calls it."""

import json

import datasets
import pandas as pd
import pytest

import tasks
from harness.scoring.rewards import compute_score
from vrbench.cli import main


def _right(target: str) -> str:
    return f"Looking at the image, the answer is \\boxed{{{target}}}."


def test_verl_layout_read_back_and_rewarded(tmp_path, capsys):
    assert main(["export-verl", str(tmp_path), "--tasks", "count_shapes,bar_chart",
                 "--limit", "4"]) == 0
    assert "train.parquet (4 rows), validation.parquet (8 rows)" in capsys.readouterr().out
    train = pd.read_parquet(tmp_path / "train.parquet")  # as verl's RLHFDataset reads it
    val = pd.read_parquet(tmp_path / "validation.parquet")
    assert set(val["data_source"]) == {"count_shapes", "bar_chart"}
    assert set(train["data_source"]) == {"count_shapes"}  # an OOD task has no train split
    bar = tasks.load("bar_chart").samples("validation", 4)
    for df in (train, val):
        for _, row in df.iterrows():
            (message,) = row["prompt"]
            assert message["role"] == "user"
            assert message["content"].count("<image>") == len(row["images"]) == 1
            assert row["images"][0]["bytes"][:4] == b"\x89PNG"
            gt, extra = row["reward_model"]["ground_truth"], row["extra_info"]
            assert row["reward_model"]["style"] == "rule"
            kw = {"data_source": row["data_source"], "ground_truth": gt, "extra_info": extra}
            assert compute_score(solution_str=_right(gt), **kw) == 1.0
            assert compute_score(solution_str="\\boxed{no idea}", **kw) == 0.0
    mc = val[val["data_source"] == "bar_chart"].iloc[0]
    assert list(mc["extra_info"]["choices"]) == bar[0].choices
    # answered with the option's text, graded through the exported choices
    text = bar[0].choices[ord(bar[0].target) - ord("A")]
    assert compute_score(data_source="bar_chart", solution_str=f"The answer is {text}.",
                         ground_truth=mc["reward_model"]["ground_truth"],
                         extra_info=mc["extra_info"]) == 1.0


def test_easyr1_layout_read_back_and_rewarded(tmp_path):
    assert main(["export-easyr1", str(tmp_path), "--tasks", "count_shapes,bar_chart",
                 "--limit", "3"]) == 0
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "validation.parquet"),
                               split="train")  # as EasyR1's RLHFDataset loads it
    assert set(ds.column_names) == {"problem", "answer", "images"}
    inputs = []
    for row in ds:
        assert row["problem"].startswith("<image>") and len(row["images"]) == 1
        answer = row["answer"]
        target = json.loads(answer)["target"] if answer.startswith("{") else answer
        inputs.append({"response": _right(target), "response_length": 12,
                       "ground_truth": answer})
    assert [s["overall"] for s in compute_score(inputs)] == [1.0] * 6
    mc = [json.loads(r["answer"]) for r in ds if r["answer"].startswith("{")]
    assert len(mc) == 3 and all(len(m["choices"]) > 1 for m in mc)


def test_an_export_with_nothing_to_write_is_one_sentence(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["export-verl", str(tmp_path / "file"), "--tasks", "count_shapes"]) == 2
    assert "is a file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export-easyr1"])
