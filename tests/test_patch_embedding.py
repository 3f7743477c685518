"""A convolution over one window of its kernel run as a product
(`harness.backends.patch_embedding`): the same outputs and gradients as the convolution, on every
architecture, and other inputs left to the convolution."""

import copy

import pytest
import torch
from torch import nn
from transformers import AutoModelForImageTextToText

import tasks
from harness.backends import patch_embedding
from harness.backends.hf import load_model
from harness.likelihood import logprobs
from tasks import decode_images
from trainers import tiny


def test_one_window_is_a_product_and_other_inputs_convolve():
    torch.manual_seed(0)
    for conv, window, image in [
            (nn.Conv3d(3, 8, (2, 4, 4), stride=(2, 4, 4), bias=False), (5, 3, 2, 4, 4),
             (1, 3, 4, 8, 8)),
            (nn.Conv2d(3, 8, 4, stride=4), (5, 3, 4, 4), (2, 3, 12, 8)),
            (nn.Conv1d(2, 8, 3, stride=1), (5, 2, 3), (2, 2, 9))]:
        before = copy.deepcopy(conv)
        assert patch_embedding.as_products(conv) == 1
        for shape in (window, image):
            x = torch.randn(shape)
            out, ref = conv(x), before(x)
            assert out.shape == ref.shape and torch.allclose(out, ref, atol=1e-5), shape
            out.square().sum().backward()
            ref.square().sum().backward()
            assert torch.allclose(conv.weight.grad, before.weight.grad, rtol=1e-4, atol=1e-5)
            conv.zero_grad()
            before.zero_grad()
    assert patch_embedding.as_products(nn.Conv2d(3, 8, 3, padding="valid")) == 1
    for other in (nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(3, 8, 3, padding="same"),
                  nn.Conv2d(4, 8, 3, groups=2),
                  nn.Conv2d(3, 8, 3, dilation=2), nn.Linear(3, 3)):
        assert patch_embedding.as_products(other) == 0


def test_a_copy_keeps_its_own_weights():
    conv = nn.Conv2d(3, 4, 2, stride=2)
    patch_embedding.as_products(conv)
    twin = copy.deepcopy(conv)
    with torch.no_grad():
        twin.weight.zero_()
        twin.bias.fill_(1.0)
    x = torch.randn(2, 3, 2, 2)
    assert torch.equal(twin(x), torch.ones(2, 4, 1, 1))
    assert not torch.equal(conv(x), twin(x))


@pytest.mark.parametrize("arch", ["qwen2_vl", "qwen2_5_vl", "llava", "idefics3"])
def test_loaded_models_give_the_convolutions_results(arch, tmp_path):
    path = tiny.build(tmp_path / arch, size="tiny", seed=0, arch=arch)
    plain = AutoModelForImageTextToText.from_pretrained(path)
    proc, loaded = load_model(str(path), device="cpu")
    assert any(m.forward.__func__ is patch_embedding._one_window_forward
               for m in loaded.modules() if isinstance(m, nn.Conv3d | nn.Conv2d))
    t = tasks.load("count_shapes")
    encs = [logprobs.encode_prompt(proc, t.prompt(s), decode_images(s))
            for s in t.samples("test", 2)]
    words = proc.tokenizer("so the count is 4", add_special_tokens=False)["input_ids"]
    batch = logprobs.collate(encs, [words, words[:2]], proc.tokenizer.pad_token_id)
    outs = []
    for model in (plain, loaded):
        model.train()
        lp, _ = logprobs.token_logprobs(model, batch)
        (lp * batch["completion_mask"][:, 1:]).sum().backward()
        outs.append((lp.detach(), {n: p.grad.clone() for n, p in model.named_parameters()
                                   if p.grad is not None}))
    assert torch.allclose(outs[0][0], outs[1][0], atol=1e-5)
    assert outs[0][1].keys() == outs[1][1].keys()
    scale = max(g.abs().max().item() for g in outs[0][1].values())
    for name, g in outs[0][1].items():
        assert torch.allclose(outs[1][1][name], g, rtol=1e-4, atol=1e-6 * scale), name
