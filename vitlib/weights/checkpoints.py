"""Reading checkpoint files of other ViT implementations: a dict of tensor name -> NumPy array, and which of three
naming schemes it uses (``"hf"``: Hugging Face transformers, ``"timm"``, ``"npz"``: the paper's official code).
:mod:`vitlib.weights.pretrained` maps those names onto a vitlib model.

A missing file is a ``FileNotFoundError``; a damaged or truncated one a ``ValueError`` naming the file.
"""
from pathlib import Path

import numpy as np

FORMATS = ("hf", "timm", "npz")


def read_checkpoint(source):
    """A dict name -> NumPy array from a path (a suffix of :data:`FILE_READERS`: ``.safetensors``, ``.npz``, ``.pth``,
    ``.pt``, ``.bin``) or a dict."""
    if isinstance(source, dict):
        return {k: _to_numpy(v) for k, v in source.items()}
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint file at {str(path)!r}. Download it first (while online), e.g. "
                                "huggingface_hub.hf_hub_download('timm/vit_base_patch16_224.augreg2_in21k_ft_in1k', "
                                "'model.safetensors').")
    suffix = path.suffix.lower()
    if suffix not in FILE_READERS:
        raise ValueError(f"Unknown checkpoint format {suffix!r} for {str(path)!r}: use one of "
                         f"{', '.join(FILE_READERS)}.")
    reader = FILE_READERS[suffix]
    try:
        return reader(path)
    except ImportError:
        raise
    except Exception as error:  # each library fails in its own words (SafetensorError, BadZipFile, UnpicklingError)
        raise ValueError(f"Could not read {str(path)!r}: the file is damaged or incomplete ({type(error).__name__}: "
                         f"{error}). Download it again; its size should match the one the hub lists.") from error


def _read_safetensors(path):
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise ImportError("Reading .safetensors files needs the 'safetensors' package: pip install safetensors") from None
    return dict(load_file(str(path)))


def _read_npz(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def _read_torch(path):
    try:
        import torch
    except ImportError:
        raise ImportError(f"Reading {path.suffix} files needs PyTorch; or convert the file to .safetensors.") from None
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise TypeError(f"expected a state dict, found a {type(state).__name__}")
    state = state.get("state_dict", state.get("model", state))
    return {k: _to_numpy(v) for k, v in state.items()}


FILE_READERS = {".safetensors": _read_safetensors, ".npz": _read_npz, ".pth": _read_torch, ".pt": _read_torch,
                ".bin": _read_torch}  # suffix -> reader: the one list of the files read_checkpoint reads


def _to_numpy(value):
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().float().cpu().numpy()
    return np.asarray(value, dtype="float32")


class Tracked(dict):
    """A dict that records which keys were read with ``[]``: what a mapping used of a checkpoint."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.used = set()

    def __getitem__(self, key):
        value = super().__getitem__(key)
        self.used.add(key)
        return value


def detect_format(weights):
    """``"hf"``, ``"timm"`` or ``"npz"`` from the tensor names."""
    if any(k.endswith("embeddings.patch_embeddings.projection.weight") for k in weights):
        return "hf"
    if "patch_embed.proj.weight" in weights:
        return "timm"
    if "embedding/kernel" in weights:
        return "npz"
    sample = ", ".join(sorted(weights)[:5])
    raise ValueError(f"Not a ViT checkpoint that vitlib can read (tensor names start {sample} ...). Expected Hugging "
                     "Face names ('vit.embeddings.cls_token', ...), timm "
                     "names ('patch_embed.proj.weight', 'blocks.0.attn.qkv.weight', ...) or the official .npz names "
                     "('embedding/kernel', 'Transformer/encoderblock_0/...').")
