"""Each distinct prompt run once for all its completions (`harness.likelihood.prefix`): the same
log-probs, entropies and gradients as one sequence a row, on every architecture."""

import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

import tasks
from harness.backends.sampling import Sampler
from harness.likelihood import logprobs, prefix
from tasks import decode_images
from trainers import rl, tiny


def _batch(proc):
    t = tasks.load("count_shapes")
    encs = [logprobs.encode_prompt(proc, t.prompt(s), decode_images(s))
            for s in t.samples("test", 3)]
    words = proc.tokenizer("so the count is 4 then check again \\boxed{4}",
                           add_special_tokens=False)["input_ids"]
    assert len(words) >= 8
    # three prompts, their rows interleaved, one prompt alone; completions of 1 to 8 tokens
    rows = [encs[0], encs[1], encs[0], encs[2], encs[0], encs[1]]
    comps = [words[:n] for n in (3, 8, 1, 5, 8, 2)]
    return logprobs.collate(rows, comps, proc.tokenizer.pad_token_id)


def _scored(fn, model, batch, suppress):
    lp, ent = fn(model, batch, Sampler(temperature=0.7, suppress=tuple(suppress)))
    mask = batch["completion_mask"][:, 1:]
    (lp * mask).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    return lp.detach(), ent, grads


@pytest.mark.parametrize("arch", ["qwen2_vl", "qwen2_5_vl", "llava", "idefics3"])
def test_shared_prompts_give_the_one_sequence_a_row_results(arch, tmp_path):
    path = tiny.build(tmp_path / arch, size="tiny", seed=0, arch=arch)
    proc = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path)
    assert prefix.supported(model)
    batch = _batch(proc)
    assert prefix.prompt_slots(batch) == ([0, 1, 0, 2, 0, 1], [0, 1, 3])
    held = set(batch["input_ids"][batch["completion_mask"] == 1].tolist())
    suppress = [t for t in range(40) if t not in held][:5]  # as the sampler's are: never drawn
    alone = _scored(logprobs.token_logprobs, model, batch, suppress)
    shared = _scored(prefix.token_logprobs, model, batch, suppress)
    mask = batch["completion_mask"][:, 1:].bool()
    assert shared[0].shape == alone[0].shape
    assert torch.equal(shared[0][~mask], torch.zeros_like(shared[0][~mask]))
    assert torch.allclose(shared[0][mask], alone[0][mask], atol=1e-5)
    assert torch.allclose(shared[1][mask], alone[1][mask], atol=1e-5)
    assert shared[2].keys() == alone[2].keys()
    scale = max(g.abs().max().item() for g in alone[2].values())  # some are 0 up to rounding
    for name, g in alone[2].items():
        assert torch.allclose(shared[2][name], g, rtol=1e-4, atol=1e-6 * scale), name


def test_other_attention_takes_the_one_sequence_a_row_pass(tmp_path):
    path = tiny.build(tmp_path / "m", size="tiny", seed=0)
    model = AutoModelForImageTextToText.from_pretrained(path, attn_implementation="eager")
    assert not prefix.supported(model)


def test_micro_batches_keep_a_prompts_rows_together():
    lengths = torch.tensor([5, 9, 6, 3, 7, 2, 8, 4])
    groups = torch.tensor([0, 1, 0, 2, 1, 2, 3, 3])
    micros = rl._micro_batches(torch.arange(8), lengths, groups, 4)
    assert [m.tolist() for m in micros] == [[3, 5, 0, 2], [6, 7, 1, 4]]
    plain = rl._micro_batches(torch.arange(8), lengths, None, 4)
    assert [m.tolist() for m in plain] == [[5, 3, 7, 0], [2, 4, 6, 1]]
