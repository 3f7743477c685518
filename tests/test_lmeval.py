"""lm-evaluation-harness interop: the exported task YAMLs run under lm-eval's
`hf-multimodal` model and agree with vrbench's own run of the same prompts, sample by
sample (greedy, one prompt at a time in both)."""

import pytest

from harness.runs.runner import evaluate
from harness.scoring import grade
from vrbench.cli import main

lm_eval = pytest.importorskip("lm_eval", reason="lm-eval is not installed (the lmeval extra)")
pytestmark = pytest.mark.slow

TASKS = ["count_shapes", "bar_chart"]


def test_lm_eval_agrees_with_vrbench(tmp_path, sft_model):
    assert main(["export-lmeval", str(tmp_path / "lm"), "--tasks", ",".join(TASKS),
                 "--limit", "6", "--max-new-tokens", "32"]) == 0
    yaml = (tmp_path / "lm" / "vrbench_count_shapes.yaml").read_text()
    assert "until: []" in yaml  # chains of thought are not cut at a blank line
    from lm_eval.tasks import TaskManager
    res = lm_eval.simple_evaluate(
        model="hf-multimodal", model_args=f"pretrained={sft_model},max_images=1",
        tasks=[f"vrbench_{t}" for t in TASKS],
        task_manager=TaskManager(include_path=str(tmp_path / "lm")), batch_size=1,
        apply_chat_template=True, log_samples=True, device="cpu")
    ours = evaluate(sft_model, ",".join(TASKS), limit=6, max_new_tokens=32, batch_size=1,
                    output=tmp_path / "ours", progress=False)
    from harness.runs.store import read_jsonl
    mine = {r["doc_id"]: r for r in read_jsonl(tmp_path / "ours" / "samples.jsonl")}
    for t in TASKS:
        theirs = res["samples"][f"vrbench_{t}"]
        assert len(theirs) == 6
        for s in theirs:
            r = mine[s["doc"]["doc_id"]]
            text = s["resps"][0][0]
            # the same answer read from each tool's response, and the same verdict
            assert grade(text, r["target"], r["choices"] or None).extracted == \
                r["filtered_resps"][0]
            assert s["acc"] == r["acc"]
        assert res["results"][f"vrbench_{t}"]["acc,none"] == pytest.approx(
            ours["results"][t]["acc"])
