"""How an evaluation runs: one dataclass, the only place its parameters are declared.

`vrbench eval`'s flags are generated from `EvalConfig` (`harness.flags`), `evaluate` takes
one, and a trainer's checkpoint scoring extends it. Adding a parameter is one line here
plus its use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import ClassVar

from harness import flags
from harness.analyzers import REFLECTION_MODES, check_tags
from harness.backends import BACKENDS, DTYPES, GenerationConfig
from harness.scoring import THINK
from tasks import EVAL_SPLIT
from vrbench.errors import VrbenchError

GENERATION_DEFAULTS = ("neutral", "model")

# The paper's three evaluation settings, plus plain greedy decoding.
PRESETS: dict[str, dict] = {
    "greedy": {"n": 1, "temperature": 0.0, "top_p": 1.0},
    "pass8": {"n": 8, "temperature": 1.0, "top_p": 1.0},
    "pass1_t0.6": {"n": 1, "temperature": 0.6, "top_p": 1.0},
    "pass1_t0.01": {"n": 1, "temperature": 0.01, "top_p": 0.001},
}


def destination(url: str | None) -> str | None:
    """What a URL setting names: a server that receives the prompts and OPENAI_API_KEY."""
    return f"a network destination that receives OPENAI_API_KEY ({url!r})" if url else None


@dataclass
class EvalConfig:
    CHOICES: ClassVar[dict] = {"preset": PRESETS, "backend": BACKENDS,
                               "reflection_mode": REFLECTION_MODES,
                               "generation_defaults": GENERATION_DEFAULTS,
                               "dtype": DTYPES, "device_map": ("auto",)}
    # what a file (a recipe) may not set: a server that would receive the API key
    COMMAND_LINE_ONLY: ClassVar[dict] = {
        "base_url": destination, "judge_base_url": destination,
        "trust_remote_code": lambda on: "code to run (the checkpoint's own)" if on else None}

    split: str | None = None  # the tasks' split to evaluate (default: each task on its
    # domain's evaluation split, tasks.EVAL_SPLIT: ID on validation, OOD and far on test; a
    # task without that split on its one split)
    limit: int | None = None  # the first N samples of each task (default: all; 0 for all)
    preset: str | None = None  # generation preset: greedy (the default), pass8 (8 samples
    # at T=1.0), pass1_t0.6 or pass1_t0.01 (T=0.01, top-p 0.001: the benchmark setting)
    samples: int | None = None  # responses per prompt (pass@k); overrides the preset
    pass_k: tuple[int, ...] = ()  # the k of pass@k and maj@k, each at most the responses per
    # prompt, e.g. 1 4 8 (default: that number, when above 1)
    temperature: float | None = None  # sampling temperature, 0 for greedy; overrides the preset
    top_p: float | None = None  # nucleus sampling threshold in (0, 1]; overrides the preset
    max_new_tokens: int | None = None  # token limit per response (256 when not set)
    batch_size: int = 16  # prompts per batch: a batch is written (and resumed) as a whole,
    # and greedy decoding on hf keeps this many rows in flight (continuous batching)
    seed: int = 0  # sampling seed
    output: str | None = None  # the run directory (default: ROOT/<model>-<config hash>)
    root: str = "runs"  # where run directories go when --output is not given
    backend: str = "hf"  # hf: transformers in this process; vllm: vLLM offline inference
    # (GPU, the vllm extra); openai: an OpenAI-compatible server at --base-url, the model
    # being the served model's name
    base_url: str | None = None  # the server of --backend openai, e.g. http://127.0.0.1:8000/v1
    # (API key: OPENAI_API_KEY)
    concurrency: int = 8  # requests in flight at once with --backend openai
    tensor_parallel_size: int = 1  # GPUs per model with --backend vllm
    device: str | None = None  # --backend hf: where the model runs, cuda, cuda:1 or cpu
    # (default: cuda where there is a GPU)
    dtype: str = "auto"  # --backend hf: the weights' dtype, auto (bfloat16 on CUDA, else
    # float32), float32, bfloat16 or float16
    device_map: str | None = None  # --backend hf: auto spreads a model too large for one GPU
    # over the node's GPUs (accelerate), the rest of it on the CPU or disk
    max_memory: str | None = None  # ... with at most this much on each device, e.g.
    # 0=70GiB,1=70GiB,cpu=200GiB (default: what accelerate finds free)
    offload_folder: str | None = None  # ... and what fits on none of them in this folder
    trust_remote_code: bool = False  # --backend hf: run the modelling code a checkpoint ships
    # (InternVL, MiniCPM-V, ...): only for a checkpoint you trust; recorded in the run
    max_image_pixels: int = 16_000_000  # the most pixels (width x height) of one image, read
    # from its header before it is decoded; a larger one is that sample's error
    judge_model: str | None = None  # also score with this LLM judge (off by default); its
    # verdicts are stored beside the rule-based ones
    judge_base_url: str | None = None  # the judge's OpenAI-compatible endpoint
    reflection_mode: str = "substring"  # reflection-word matching: substring (the paper's)
    # or word (whole words only)
    reasoning_tags: tuple[str, str] = THINK  # the reasoning block's opening and closing tags
    # (a model's own, as <reasoning> </reasoning>): the answer is read after the block, and
    # each response's tokens are counted in it and after it
    data_dir: str | None = None  # the folder of local copies of published benchmarks
    # (default: $VRBENCH_DATA)
    generation_defaults: str = "neutral"  # what fills the generation settings the preset and
    # the flags leave open: neutral (vrbench's: greedy, no top-k, no repetition penalty) or
    # model (the checkpoint's generation_config.json: its temperature, top-p, top-k and
    # repetition penalty); the effective values are in the run's config.json either way
    progress: bool = True  # show progress bars

    def __post_init__(self) -> None:
        if self.limit == 0:  # all, as with `vrbench kl`: the same run as no limit
            self.limit = None

    def _flag(self, name: str) -> str:
        """The flag that sets field `name`, as the command at hand spells it (`--eval-limit`
        where a trainer nests these settings)."""
        return "--" + (getattr(self, "FLAG_PREFIX", "") + name).replace("_", "-")

    def check(self) -> None:
        """Refuse impossible values with one sentence (raises VrbenchError)."""
        flags.check_choices(self)
        check_tags(self.reasoning_tags, self._flag("reasoning_tags"))
        if self.limit is not None and self.limit < 0:
            raise VrbenchError(f"{self._flag('limit')} must be 0 (all) or more, not "
                               f"{self.limit}.")
        for name in ("batch_size", "samples", "max_new_tokens", "concurrency",
                     "tensor_parallel_size", "max_image_pixels"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise VrbenchError(f"{self._flag(name)} must be at least 1, not {value}.")
        if self.temperature is not None and not (math.isfinite(self.temperature)
                                                 and self.temperature >= 0):
            raise VrbenchError(f"{self._flag('temperature')} must be a finite number >= 0, "
                               f"not {self.temperature}.")
        if self.top_p is not None and not 0 < self.top_p <= 1:  # NaN fails this too
            raise VrbenchError(f"{self._flag('top_p')} must be in (0, 1], not {self.top_p}.")
        defaults = EvalConfig()
        for name, spec in BACKENDS.items():
            for option in set(spec.options) - set(BACKENDS[self.backend].options):
                if getattr(self, option) != getattr(defaults, option):
                    raise VrbenchError(f"--{option.replace('_', '-')} is for --backend {name}.")
        if bool(self.judge_model) != bool(self.judge_base_url):
            raise VrbenchError("--judge-model and --judge-base-url go together (an "
                               "OpenAI-compatible endpoint; key from OPENAI_API_KEY).")

    def generation(self, model: str | None = None) -> GenerationConfig:
        """Every generation setting, explicit: the defaults (vrbench's neutral ones, or with
        `generation_defaults="model"` those of `model`'s generation config), the preset's
        settings on top, then the explicit flags."""
        self.check()
        base = GenerationConfig()
        if self.generation_defaults == "model":
            if model is None:
                raise VrbenchError("--generation-defaults model needs a checkpoint to read "
                                   "them from.")
            base = replace(base, **checkpoint_generation_defaults(model))
        if self.preset is not None:
            base = replace(base, **PRESETS[self.preset])
        explicit = {"n": self.samples, "temperature": self.temperature, "top_p": self.top_p,
                    "max_new_tokens": self.max_new_tokens}
        gen = replace(base, seed=self.seed, **{k: v for k, v in explicit.items()
                                               if v is not None})
        if gen.n > 1 and gen.temperature == 0:
            raise VrbenchError("several samples per prompt need a temperature above 0.")
        if bad := [k for k in self.pass_k if not 1 <= k <= gen.n]:
            raise VrbenchError(f"--pass-k {bad[0]} is not in [1, {gen.n}] (the responses per "
                               "prompt: --samples or the preset's).")
        return gen

    def backend_options(self) -> dict:
        """Keyword arguments of the backend `load_backend` creates."""
        return {name: getattr(self, name) for name in BACKENDS[self.backend].options}

    def base(self) -> EvalConfig:
        """This configuration as a plain EvalConfig (a subclass's own fields dropped)."""
        return EvalConfig(**{f.name: getattr(self, f.name) for f in fields(EvalConfig)})


def checkpoint_generation_defaults(model: str) -> dict:
    """The sampling settings a checkpoint's generation_config.json asks for, as
    GenerationConfig fields ({} where it has none)."""
    from transformers import GenerationConfig as HFGenerationConfig
    try:
        g = HFGenerationConfig.from_pretrained(model)
    except (OSError, ValueError) as e:
        if "generation_config.json" in str(e) or isinstance(e, OSError):
            return {}
        raise VrbenchError(f"the generation config of {model} could not be read ({e}).") from e
    for name, ok in (("temperature", lambda v: v >= 0), ("top_p", lambda v: 0 < v <= 1),
                     ("top_k", lambda v: v >= 0), ("repetition_penalty", lambda v: v > 0)):
        value = getattr(g, name, None)
        if value is not None and not (isinstance(value, int | float) and math.isfinite(value)
                                      and ok(value)):
            raise VrbenchError(f"the generation config of {model} sets {name} to {value!r}, "
                               "which no sampler takes; fix its generation_config.json or "
                               "pass --generation-defaults neutral.")
    out = {}
    if g.do_sample is not None:
        out["temperature"] = float(g.temperature or 1.0) if g.do_sample else 0.0
    if g.top_p is not None:
        out["top_p"] = float(g.top_p)
    if g.top_k is not None:
        out["top_k"] = int(g.top_k)
    if g.repetition_penalty is not None:
        out["repetition_penalty"] = float(g.repetition_penalty)
    return out


@dataclass
class KLConfig:
    """How `vrbench kl` measures KL from a base checkpoint: on which prompts, sampled how."""

    split: str = EVAL_SPLIT["id"]  # the tasks' split whose prompts are used
    limit: int | None = 64  # the first N prompts of each task (default 64; 0 for all)
    max_new_tokens: int = 256  # token limit of the base's responses
    batch_size: int = 8  # prompts per pass
    seed: int = 0  # sampling seed of the base's responses
    data_dir: str | None = None  # local copies of published benchmarks (default: $VRBENCH_DATA)

    def check(self) -> None:
        if self.limit is not None and self.limit < 0:
            raise VrbenchError(f"--limit must be 0 (all) or more, not {self.limit}.")
        if self.max_new_tokens < 1 or self.batch_size < 1:
            raise VrbenchError("--max-new-tokens and --batch-size must be at least 1.")
