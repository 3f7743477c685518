"""Reasoning models: the answer read after the reasoning block (`<think>` or a model's own
tags), the tokens each response spends in it and after it, and per task the share cut off
inside it and the tokens spent per right answer."""

import json

import pytest

import tasks
from harness import analyzers
from harness.analyzers import Reading
from harness.backends import GenerationConfig, Request, Response
from harness.backends.hf import HFBackend
from harness.reports.tables import results_table
from harness.runs.runner import evaluate
from harness.runs.store import read_jsonl
from harness.scoring import grade, split_reasoning
from helpers import image_key
from vrbench.cli import main

R = ("<reasoning>", "</reasoning>")


def words(text: str) -> int:
    return len(text.split())


@pytest.mark.parametrize("text, tags, block, after", [
    ("The answer is 7.", R, "", "The answer is 7."),
    ("<think>a b</think> 7", ("<think>", "</think>"), "<think>a b</think>", " 7"),
    ("<think>a b", ("<think>", "</think>"), "<think>a b", None),
    # the chat template opened the block in the prompt: only its end is generated
    ("a b</think> 7", ("<think>", "</think>"), "a b</think>", " 7"),
    ("<reasoning>x</reasoning>\n7", R, "<reasoning>x</reasoning>", "\n7"),
    ("<reasoning>x</reasoning> more <reasoning>y", R, "<reasoning>x</reasoning> more "
     "<reasoning>y", None),
])
def test_a_response_splits_at_its_reasoning_block(text, tags, block, after):
    assert split_reasoning(text, tags) == (block, after)


def test_the_answer_is_read_after_the_models_own_tags():
    cut = "<reasoning>Try 5: the answer is \\boxed{5}. Hmm, wait"  # ended inside its reasoning
    assert grade(cut, "5").correct  # read as if it were an answer, without the model's tags
    g = grade(cut, "5", tags=R)
    assert not g.correct and g.method == "unclosed_think"
    done = "<reasoning>Maybe \\boxed{5}.</reasoning>So the answer is \\boxed{7}."
    assert grade(done, "7", tags=R).correct and not grade(done, "5", tags=R).correct
    assert analyzers.analyze(cut, reading=Reading(tags=R))["extraction"] == "unclosed_think"


def test_each_response_records_its_tokens_in_and_after_the_reasoning():
    reading = Reading(count_tokens=words)
    closed = analyzers.analyze("<think> a b c </think> so 7", 9, "stop", reading)
    assert (closed["reasoning"], closed["reasoning_tokens"], closed["answer_tokens"]) == (
        "closed", 5, 4)  # the block by the tokenizer, the rest (end of sequence included)
    cut = analyzers.analyze("<think> a b c", 64, "length", reading)
    assert (cut["reasoning"], cut["reasoning_tokens"], cut["answer_tokens"]) == (
        "unclosed", 64, 0)
    plain = analyzers.analyze("so 7", 3, "stop", reading)
    assert (plain["reasoning"], plain["reasoning_tokens"], plain["answer_tokens"]) == (
        "none", 0, 3)
    # no tokenizer (a served model): a closed block's split is unknown, the others are not
    unknown = analyzers.analyze("<think> a </think> 7", 6, "stop")
    assert (unknown["reasoning_tokens"], unknown["answer_tokens"]) == (None, None)
    assert analyzers.analyze("<think> a", 6, "length")["reasoning_tokens"] == 6
    assert analyzers.analyze("7", None)["reasoning_tokens"] is None  # no count at all


def test_a_task_reports_the_reasoning_cut_off_and_the_tokens_per_right_answer():
    reading = Reading(count_tokens=words)
    rows = [("<think> a b </think> \\boxed{7}", 8, "stop", True),  # reasoning 4, answer 4
            ("<think> a b c d e f", 32, "length", False),  # cut off inside its reasoning
            ("<think> a b", 5, "stop", False),  # stopped inside it: not cut off
            ("\\boxed{7}", 4, "stop", True)]  # no block
    s = analyzers.summarize([analyzers.analyze(t, n, f, reading) | {"correct": c}
                             for t, n, f, c in rows])
    assert s["reasoning_block_ratio"] == 0.75
    assert s["cut_in_reasoning_ratio"] == 0.25
    assert s["reasoning_tokens_mean"] == (4 + 32 + 5 + 0) / 4
    assert s["answer_tokens_mean"] == (4 + 0 + 0 + 4) / 4
    assert s["tokens_per_correct"] == (8 + 32 + 5 + 4) / 2
    none_right = analyzers.summarize([analyzers.analyze("x", 3, "stop") | {"correct": False}])
    assert none_right["tokens_per_correct"] is None
    # records analysed before these fields: no block, nothing counted
    old = {k: v for k, v in analyzers.analyze("x", 3, "stop").items()
           if not k.startswith(("reasoning", "answer_tokens"))}
    s = analyzers.summarize([old | {"correct": True}])
    assert s["reasoning_block_ratio"] == 0 and s["reasoning_tokens_mean"] is None


class Thinking:
    """A reasoning model's answers, scripted: per image, a response (text, finish reason);
    its tokens are its words, end of sequence included."""

    name = "thinking"

    def __init__(self, answers: dict[str, tuple[str, str]]):
        self.answers = answers

    def count_tokens(self, text: str) -> int:
        return words(text)

    def generate(self, requests: list[Request], config: GenerationConfig):
        out = []
        for r in requests:
            text, finish = self.answers[image_key(r.images[0])]
            out.append([Response(text, words(text) + (finish == "stop"), finish)])
        return out


def test_eval_records_reasoning_per_sample_and_per_task(tmp_path):
    t = tasks.load("count_shapes")
    samples = t.samples(t.eval_split(), 4)
    think = "<reasoning> count them one by one " + "again " * 20
    answers = {}
    for i, s in enumerate(samples):
        key = image_key(tasks.decode_images(s)[0])
        answers[key] = [(f"{think}</reasoning> \\boxed{{{s.target}}}", "stop"),
                        (think, "length"),  # the token limit came inside the reasoning
                        (f"{think}</reasoning> \\boxed{{999}}", "stop"),
                        (f"\\boxed{{{s.target}}}", "stop")][i]
    out = evaluate("thinking", [t], limit=4, engine=Thinking(answers), reasoning_tags=R,
                   output=str(tmp_path / "run"), progress=False)
    rows = read_jsonl(tmp_path / "run" / "samples.jsonl")
    a = [r["analysis"][0] for r in rows]
    assert [x["reasoning"] for x in a] == ["closed", "unclosed", "closed", "none"]
    assert all(x["reasoning_tokens"] + x["answer_tokens"] == x["n_tokens"] for x in a)
    assert a[0]["reasoning_tokens"] == words(think + "</reasoning>")
    assert [r["correct"] for r in rows] == [[True], [False], [False], [True]]
    r = out["results"]["count_shapes"]
    assert r["cut_in_reasoning_ratio"] == 0.25 and r["reasoning_block_ratio"] == 0.75
    assert r["tokens_per_correct"] == sum(x["n_tokens"] for x in a) / 2
    assert (f"count_shapes: 75.0% reason in a block, 25.0% cut off inside it; "
            f"{r['reasoning_tokens_mean']:.0f} tokens reasoning and "
            f"{r['answer_tokens_mean']:.0f} answering on average; "
            f"{r['tokens_per_correct']:.0f} tokens per right answer") in results_table(out)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["reasoning_tags"] == list(R)
    # the default tags leave a run's identity as it was (None is left out of it)
    plain = evaluate("thinking", [t], limit=4, engine=Thinking(answers),
                     output=str(tmp_path / "plain"), progress=False)
    assert json.loads((tmp_path / "plain" / "config.json").read_text())[
        "reasoning_tags"] is None
    assert json.loads((tmp_path / "plain" / "config.json").read_text())["run_id"] != config[
        "run_id"]
    assert plain["results"]["count_shapes"]["reasoning_block_ratio"] == 0
    # read without the model's tags, the response cut inside its reasoning has an answer
    assert read_jsonl(tmp_path / "plain" / "samples.jsonl")[1]["analysis"][0][
        "reasoning"] == "none"


@pytest.mark.parametrize("command", [["eval", "--model", "m", "--tasks", "count_shapes"],
                                     ["rescore", "f.json", "--format", "mathvista"]])
@pytest.mark.parametrize("tags", [["<think>"], ["<t>", "<t>"], ["<think>", "</think>", "x"],
                                  ["think", "/think"], ["", "</think>"]])
def test_bad_tags_are_one_sentence_before_anything_loads(command, tags, capsys):
    assert main([*command, "--reasoning-tags", *tags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--reasoning-tags takes two tags" in err


def test_the_hf_backend_counts_reasoning_tokens_with_its_tokenizer(tiny_model, tmp_path):
    """A response as the model would emit it (its token ids decoded): the block's tokens
    and the answer's add up to the ids, both counted in tokens, not characters."""
    engine = HFBackend(tiny_model)
    tok = engine.processor.tokenizer
    block = "<think>Let me think step by step. 3 + 4 = 7.</think>"
    ids = tok(block + " The answer is \\boxed{7}.", add_special_tokens=False)["input_ids"]
    text = tok.decode(ids)
    a = analyzers.analyze(text, len(ids), "stop", Reading(count_tokens=engine.count_tokens))
    assert a["reasoning"] == "closed"
    assert a["reasoning_tokens"] + a["answer_tokens"] == len(ids)
    assert 0 < a["reasoning_tokens"] < len(block) and 0 < a["answer_tokens"] < len(ids) // 2
    evaluate(tiny_model, "count_shapes", limit=2, max_new_tokens=4, engine=engine,
             output=str(tmp_path / "run"), progress=False)
    for row in read_jsonl(tmp_path / "run" / "samples.jsonl"):
        a = row["analysis"][0]
        assert a["reasoning"] == "none" and a["answer_tokens"] == a["n_tokens"] > 0


def test_rescore_reads_answers_after_the_given_tags(tmp_path):
    path = tmp_path / "made.jsonl"  # MATH-V outputs: one ended inside its reasoning
    path.write_text(json.dumps({"id": "1", "response": "<r>So \\boxed{7}", "answer": "7",
                                "options": [], "correct": False}) + "\n")
    plain = main(["rescore", str(path), "--format", "mathvision", "--output",
                  str(tmp_path / "plain")])
    tagged = main(["rescore", str(path), "--format", "mathvision", "--output",
                   str(tmp_path / "tagged"), "--reasoning-tags", "<r>", "</r>"])
    assert plain == tagged == 0
    acc = {name: json.loads((tmp_path / name / "results.json").read_text())["results"][
        "mathvision_test"]["acc"] for name in ("plain", "tagged")}
    assert acc == {"plain": 1.0, "tagged": 0.0}


def test_the_rl_reward_reads_the_answer_after_the_tags_checkpoints_are_scored_with():
    from harness.scoring.rewards import reward
    from trainers.config import CheckpointEval, RLConfig
    terms = RLConfig(model="m", out="o", tasks="count_shapes",
                     eval=CheckpointEval(reasoning_tags=R)).reward_terms()
    cut = "<reasoning>so the answer is \\boxed{5}"  # cut off while reasoning
    assert reward(cut, "5")["correct"] == 1.0  # without the model's tags: read as an answer
    assert reward(cut, "5", terms=terms, n_tokens=40, finish_reason="stop")["correct"] == 0.0
    done = "<reasoning>\\boxed{4}?</reasoning> \\boxed{5}"
    right = reward(done, "5", terms=terms, n_tokens=40, finish_reason="stop")
    assert right["correct"] == 1.0 and right["format"] == 1.0
    assert reward(done, "4", terms=terms, n_tokens=40, finish_reason="stop")["correct"] == 0.0
