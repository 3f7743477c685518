"""The vLLM backend on a GPU: greedy answers of the tiny model agree with the hf backend's.
Skipped, with the reason, where vLLM or CUDA is missing."""

import pytest
import torch

import tasks
from harness.backends import GenerationConfig, Request, load_backend
from tasks import decode_images
from vrbench.errors import VrbenchError

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="vLLM needs a CUDA GPU")


def test_missing_vllm_is_one_clear_sentence(tiny_model):
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(VrbenchError, match=r"pip install 'vrbench\[vllm\]'"):
            load_backend("vllm", tiny_model)
    else:
        pytest.skip("vLLM is installed here")


@needs_gpu
def test_vllm_greedy_matches_hf(tiny_model):
    pytest.importorskip("vllm", reason="vLLM is not installed")
    t = tasks.load("count_shapes")
    reqs = [Request(t.prompt(s), decode_images(s)) for s in t.samples("test", 8)]
    cfg = GenerationConfig(max_new_tokens=16)
    fast = load_backend("vllm", tiny_model, gpu_memory_utilization=0.3).generate(reqs, cfg)
    ref = load_backend("hf", tiny_model).generate(reqs, cfg)
    same = sum(a[0].text == b[0].text for a, b in zip(fast, ref, strict=True))
    assert same >= 6  # float kernels differ; most greedy answers must not
