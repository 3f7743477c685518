"""vLLM offline inference (`LLM.generate` with `multi_modal_data`): the fast path on GPUs.

vLLM is an optional extra (`pip install 'vrbench[vllm]'`, CUDA only) and is imported when
the backend is created, so everything else works without it. Prompts are rendered with the
checkpoint's own chat template, exactly as the `hf` backend renders them.
"""

from __future__ import annotations

from harness.backends import GenerationConfig, Request, Response
from harness.backends.chat import chat_text, token_count
from vrbench.errors import VrbenchError
from vrbench.seeds import derive


class VLLMBackend:
    name = "vllm"

    def __init__(self, model: str, tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.85, max_model_len: int | None = None,
                 max_images: int = 4):
        try:
            from vllm import LLM
        except ImportError as e:
            raise VrbenchError("the vllm backend needs vLLM on a CUDA machine: "
                               "pip install 'vrbench[vllm]'.") from e
        from transformers import AutoProcessor
        self.processor = AutoProcessor.from_pretrained(model)
        self.llm = LLM(model=model, tensor_parallel_size=tensor_parallel_size,
                       gpu_memory_utilization=gpu_memory_utilization,
                       max_model_len=max_model_len, limit_mm_per_prompt={"image": max_images})

    def count_tokens(self, text: str) -> int:
        return token_count(self.processor, text)

    def generate(self, requests: list[Request], config: GenerationConfig
                 ) -> list[list[Response]]:
        from vllm import SamplingParams
        prompts = []
        for r in requests:
            p: dict = {"prompt": chat_text(self.processor, r.prompt, len(r.images))}
            if r.images:
                p["multi_modal_data"] = {"image": r.images[0] if len(r.images) == 1
                                         else r.images}
            prompts.append(p)
        # every setting explicit, so that nothing comes from the checkpoint's defaults
        params = [SamplingParams(n=config.n, temperature=config.temperature,
                                 top_p=config.top_p, top_k=config.top_k or -1,
                                 repetition_penalty=config.repetition_penalty, min_p=0.0,
                                 max_tokens=config.max_new_tokens,
                                 # per request: independent of the batching
                                 seed=derive(config.seed, "request", i))
                  for i in range(len(requests))]
        outs = self.llm.generate(prompts, params, use_tqdm=False)
        return [[Response(o.text, len(o.token_ids),
                          "length" if o.finish_reason == "length" else "stop",
                          tuple(o.token_ids)) for o in out.outputs] for out in outs]
