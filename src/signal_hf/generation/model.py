"""Loading the generator's causal LM (device, dtype, optional 4-bit) and wrapping it with LoRA.

:func:`load_base_model` loads the base model the ``generator`` section names; :func:`attach_lora`
makes it the :class:`peft.PeftModel` the :class:`~signal_hf.generation.generator.Generator` samples
from and the RL module trains in place (a fresh adapter, or a trained one from a folder or the Hub).
"""

from __future__ import annotations

from typing import Any

import torch

from ..bundled import resolve_model_path
from ..errors import ConfigError, GenerationError
from .config import GeneratorConfig

__all__ = ["load_base_model", "attach_lora", "use_row_major_head"]


def _row_major_linear(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    if torch.is_grad_enabled() or x.device.type != "cpu" or self.weight.dtype != torch.float32 or self.bias is not None:
        return torch.nn.functional.linear(x, self.weight, self.bias)
    flat = x.reshape(-1, x.shape[-1])
    return torch.mm(self.weight, flat.t()).t().reshape(*x.shape[:-1], self.weight.shape[0])


def use_row_major_head(model: Any, enabled: bool = True) -> bool:
    """Compute the output layer's logits as ``(W · hᵀ)ᵀ`` at inference on CPU (fp32, no bias).

    The same product as ``linear(h, W)``, laid out so the BLAS streams the (vocabulary × hidden)
    weight once per step: with Gemma 3's 262k-token vocabulary that layer is most of a decode step,
    and this layout measured ~2× faster at 8–32 rows on 2 cores (``make bench``, generation). Training
    (grad enabled) keeps ``linear``. ``enabled=False`` restores plain ``linear``. Returns whether the
    layer is now row-major.
    """
    import types

    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if not isinstance(head, torch.nn.Linear) or head.bias is not None:
        return False
    if not enabled:
        head.__dict__.pop("forward", None)  # back to nn.Linear.forward
        return False
    head.forward = types.MethodType(_row_major_linear, head)
    return True


def _device(config: GeneratorConfig) -> torch.device:
    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(config.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GenerationError(f"generator.device: {config.device!r} asked for but no CUDA GPU is available (fix: set generator.device: auto or cpu)")
    return dev


def _dtype(config: GeneratorConfig, device: torch.device) -> torch.dtype:
    if config.dtype != "auto":
        return getattr(torch, config.dtype)
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_base_model(config: GeneratorConfig, *, field_prefix: str = "generator") -> tuple[Any, Any]:
    """Load the base causal LM and tokenizer the config names (no adapter yet).

    ``load_in_4bit`` quantises with bitsandbytes NF4 (bf16 compute) and prepares the model for
    k-bit training; it needs CUDA and fails with a :class:`GenerationError` otherwise.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = _device(config)
    kwargs: dict[str, Any] = {}
    if config.load_in_4bit:
        # Checked before resolving the model: converting a bundled GGUF takes a minute.
        if device.type != "cuda":
            raise GenerationError(
                f"{field_prefix}.load_in_4bit: 4-bit NF4 quantisation (bitsandbytes) needs a CUDA GPU, but the generator runs on {device.type} "
                f"(fix: set {field_prefix}.load_in_4bit: false on CPU — LoRA then trains on the full-precision model)"
            )
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise GenerationError(f"{field_prefix}.load_in_4bit: needs the bitsandbytes package (fix: pip install 'signal_hf[gpu]')") from None
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
        kwargs["device_map"] = {"": device.index if device.index is not None else torch.cuda.current_device()}
    else:
        kwargs["dtype"] = _dtype(config, device)
    path = resolve_model_path(config.model_name_or_path, f"{field_prefix}.model_name_or_path", gguf_file=config.gguf_file)
    if config.revision:
        kwargs["revision"] = config.revision
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **({"revision": config.revision} if config.revision else {}))
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as e:
        raise GenerationError(
            f"{field_prefix}.model_name_or_path: cannot load causal LM {config.model_name_or_path!r}: {e} "
            "(fix: give a local folder, a Hub model id (with generator.revision), or bundled:gemma3-270m / bundled:smollm2-135m)"
        ) from e
    if config.load_in_4bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    else:
        model.to(device)
        if device.type == "cpu" and config.row_major_head:
            use_row_major_head(model)
    return model, tokenizer


def attach_lora(base: Any, config: GeneratorConfig) -> Any:
    """``base`` as a :class:`peft.PeftModel`: unchanged if it is one, else with the adapter
    ``config.adapter_name_or_path`` names (trainable) or a fresh LoRA of ``config.lora_*``."""
    from peft import LoraConfig, PeftModel, get_peft_model

    if isinstance(base, PeftModel):
        return base
    if config.adapter_name_or_path:
        extra = {"revision": config.adapter_revision} if config.adapter_revision else {}
        try:
            return PeftModel.from_pretrained(base, str(config.adapter_name_or_path), is_trainable=True, **extra)
        except (OSError, ValueError) as e:
            raise GenerationError(
                f"generator.adapter_name_or_path: cannot load the LoRA adapter {config.adapter_name_or_path!r}"
                f"{' at revision ' + repr(config.adapter_revision) if config.adapter_revision else ''}: {e} "
                "(fix: give a folder written by Generator.save_adapter or a Hub adapter repo and its revision)"
            ) from e
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.lora_target_modules) or None,
        task_type="CAUSAL_LM",
    )
    try:
        return get_peft_model(base, lora)
    except ValueError as e:
        raise ConfigError("generator.lora_target_modules", str(e), "name modules of this architecture (e.g. [q_proj, v_proj]) or leave it empty") from e
