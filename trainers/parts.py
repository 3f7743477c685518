"""The trainable parts of a vision-language model (vision tower, connector, language model),
found from the model's own sub-modules, and freezing what is not trained.

transformers exposes the vision tower (`get_encoder("image")`) and the language model
(`get_decoder()`, with `get_output_embeddings()`, the LM head); the connector is the
module that projects the tower's features into the language model (`multi_modal_projector`
in LLaVA, `connector` in Idefics3, the vision tower's `merger` in Qwen2-VL). A parameter in
none of them (an image-newline vector, say) counts as connector: it sits between the two.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vrbench.errors import VrbenchError

if TYPE_CHECKING:  # the names and their check need no torch: a trainer's --help starts fast
    import torch

PARTS = ("vision", "connector", "language")
CONNECTORS = ("multi_modal_projector", "connector", "mm_projector", "merger")


def _modules(model: torch.nn.Module) -> dict[str, list[torch.nn.Module]]:
    """part -> the sub-modules that hold it."""
    import torch
    vision = model.get_encoder(modality="image")
    if vision is model or vision is getattr(model, "base_model", None):
        raise VrbenchError(f"{type(model).__name__} exposes no vision tower "
                           "(get_encoder('image')); its parts cannot be told apart.")
    language = [m for m in (model.get_decoder(), model.get_output_embeddings())
                if m is not None]
    owners = [vision, getattr(model, "base_model", model), model]
    connector = [getattr(o, name) for o in owners for name in CONNECTORS
                 if isinstance(getattr(o, name, None), torch.nn.Module)]
    return {"connector": connector, "vision": [vision], "language": language}


def parameter_parts(model: torch.nn.Module) -> dict[str, str]:
    """Parameter name -> its part, for every parameter of the model."""
    of: dict[int, str] = {}
    for part, modules in _modules(model).items():  # the connector first: Qwen's is in the tower
        for m in modules:
            for p in m.parameters():
                of.setdefault(id(p), part)
    return {name: of.get(id(p), "connector") for name, p in model.named_parameters()}


def check_parts(parts: tuple[str, ...]) -> None:
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise VrbenchError(f"unknown trainable part(s) {sorted(unknown)}; choose from {PARTS}.")


def set_trainable(model: torch.nn.Module, parts: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """Freeze what is not trained; returns each part's parameter count, in all and trained.
    A requested part the model does not have is an error."""
    check_parts(parts)
    of = parameter_parts(model)
    total, trained = dict.fromkeys(PARTS, 0), dict.fromkeys(PARTS, 0)
    for name, p in model.named_parameters():
        p.requires_grad_(of[name] in parts)
        total[of[name]] += p.numel()
        trained[of[name]] += p.numel() if of[name] in parts else 0
    missing = [part for part in parts if not total[part]]
    if missing:
        raise VrbenchError(f"{type(model).__name__} has no {' or '.join(missing)} parameters "
                           "to train; its parts: " + describe(total, trained) + ".")
    return {"total": total, "trained": trained}


def describe(total: dict[str, int], trained: dict[str, int]) -> str:
    """ "vision 1,234 (frozen), connector 56 (trained), ..." """
    return ", ".join(f"{part} {total[part]:,} ({'trained' if trained[part] else 'frozen'})"
                     for part in PARTS)
