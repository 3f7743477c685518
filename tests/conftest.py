import os

import pytest

from trainers import tiny


@pytest.fixture(scope="session", autouse=True)
def _own_cache(tmp_path_factory):
    """vrbench's cache (checkpoint fingerprints) in the session's temporary folder, for this
    process and the commands it starts."""
    os.environ["VRBENCH_CACHE"] = str(tmp_path_factory.mktemp("vrbench-cache"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A freshly built tiny Qwen2-VL checkpoint (random weights), shared by the session."""
    return str(tiny.build(tmp_path_factory.mktemp("models") / "tiny", size="tiny", seed=0))


@pytest.fixture(scope="session")
def sft_model(tmp_path_factory, tiny_model):
    """The tiny model after a short SFT on count_shapes: it has learned the answer format,
    so RL has rewards that vary within a group."""
    from trainers.config import CheckpointEval, OptimSettings
    from trainers.sft import SFTConfig, train
    out = tmp_path_factory.mktemp("sft")
    return str(train(SFTConfig(
        model=tiny_model, out=str(out), tasks="count_shapes", steps=60, batch_size=8,
        log_every=5, optim=OptimSettings(lr=3e-3),
        eval=CheckpointEval(id_tasks="count_shapes", ood_tasks="", limit=8, max_new_tokens=32))))
