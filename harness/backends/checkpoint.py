"""Whether a path can be a checkpoint, told in one sentence before anything heavy is
imported: a missing folder, a file, a folder without config.json, an adapter beside whole
weights, or a Hub id that is neither cached nor reachable."""

from __future__ import annotations

from pathlib import Path

from vrbench.errors import VrbenchError


def check_checkpoint(path: str) -> None:
    """Fail with one sentence when `path` cannot be a VLM checkpoint."""
    p = Path(path)
    if not p.exists():
        if p.is_absolute() or path.startswith(".") or path.count("/") != 1 or \
                Path(path.split("/")[0]).is_dir():  # "models/nope": a local folder's
            raise VrbenchError(f"model path {path} does not exist.")
        _on_the_hub(path)
    if not p.is_dir():
        raise VrbenchError(f"model path {path} is a file; a checkpoint is a directory.")
    if not (p / "config.json").is_file():
        raise VrbenchError(f"{path} is not a model checkpoint: it has no config.json.")
    if (p / "adapter_config.json").is_file() and (
            any(p.glob("model*.safetensors")) or any(p.glob("pytorch_model*.bin"))):
        raise VrbenchError(f"{path} holds whole weights and an adapter_config.json beside them, "
                           "so transformers would apply the adapter on top of weights that may "
                           "hold it already; move the adapter into a folder of its own.")


def _on_the_hub(repo: str) -> None:
    """A Hub id: fine when the local Hub cache has it; else, offline or with the Hub out of
    reach (seconds, not transformers' minutes of retries), one sentence."""
    import os
    import socket
    import urllib.parse

    from huggingface_hub import try_to_load_from_cache
    if isinstance(try_to_load_from_cache(repo, "config.json"), str):
        return
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise VrbenchError(f"{repo} is no local path and not in the Hub cache, and "
                           "HF_HUB_OFFLINE is set.")
    url = urllib.parse.urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=5).close()
    except OSError as e:
        raise VrbenchError(f"{repo} is no local path, not in the Hub cache, and the Hub "
                           f"({url.hostname}) cannot be reached ({e.strerror or e}).") from e
