"""Pretrained weights: load ImageNet-trained ViTs into ``build_vit`` models.

Three formats, the ones users commonly have:

- **Hugging Face transformers** ``ViTForImageClassification`` / ``ViTModel`` weights (``model.safetensors`` of
  e.g. ``google/vit-base-patch16-224``), with the names of transformers 4 or 5;
- **timm** state dicts, as ``.safetensors`` (what the Hugging Face hub serves for ``timm/vit_*`` models, e.g.
  ``timm/vit_base_patch16_224.augreg2_in21k_ft_in1k``), ``.pth`` / ``.bin`` (needs PyTorch) or a dict of arrays;
- the **official** ``.npz`` checkpoints of the paper's code (``google-research/vision_transformer``,
  e.g. ``ViT-B_16.npz``).

    model = vitlib.build_vit("B/16", image_size=224, num_classes=1000)
    vitlib.pretrained.load_weights(model, "model.safetensors")

The model must have the checkpoint's width, depth and MLP size, a patch stem and the class token
(``pool="token"``, as the paper's models). A different image size is fine: the position embeddings are
resized by 2-D interpolation (Sec. 3.2 of the paper). A different number of classes needs
``include_head=False``, which keeps the model's own (zero-initialised) head for fine-tuning. Any other
mismatch is refused with a message naming the tensor. Nothing is downloaded here: fetch the file first
(e.g. ``huggingface_hub.hf_hub_download``) while online.
"""
from pathlib import Path

import keras
import numpy as np

from vitlib.embeddings import resize_position_embeddings

FORMATS = ("hf", "timm", "npz")


def read_checkpoint(source):
    """A dict name -> NumPy array from a path (``.safetensors``, ``.npz``, ``.pth``, ``.bin``) or a dict."""
    if isinstance(source, dict):
        return {k: _to_numpy(v) for k, v in source.items()}
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint file at {str(path)!r}. Download it first (while online), e.g. "
                                "huggingface_hub.hf_hub_download('timm/vit_base_patch16_224.augreg2_in21k_ft_in1k', "
                                "'model.safetensors').")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        try:
            from safetensors.numpy import load_file
        except ImportError:
            raise ImportError("Reading .safetensors files needs the 'safetensors' package: pip install safetensors") from None
        return dict(load_file(str(path)))
    if suffix == ".npz":
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    if suffix in (".pth", ".pt", ".bin"):
        try:
            import torch
        except ImportError:
            raise ImportError(f"Reading {suffix} files needs PyTorch; or convert the file to .safetensors.") from None
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        state = state.get("state_dict", state.get("model", state))
        return {k: _to_numpy(v) for k, v in state.items()}
    raise ValueError(f"Unknown checkpoint format {suffix!r} for {str(path)!r}: use .safetensors, .npz, .pth or .bin.")


def _to_numpy(value):
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().float().cpu().numpy()
    return np.asarray(value, dtype="float32")


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


def _torch_outer_tensors(w, patch, cls, pos, norm, head):
    """The tensors outside the encoder blocks of a PyTorch ViT (conv weights (D, C, P, P), Linear (out, in))."""
    out = {
        "patch_embedding/projection/kernel": w[patch + ".weight"].transpose(2, 3, 1, 0),  # (P, P, C, D)
        "patch_embedding/projection/bias": w[patch + ".bias"],
        "class_token/token": w[cls],
        "position_embedding/embeddings": w[pos],
        "encoder_norm/gamma": w[norm + ".weight"],
        "encoder_norm/beta": w[norm + ".bias"],
    }
    if head + ".weight" in w:
        out["head/kernel"], out["head/bias"] = w[head + ".weight"].T, w[head + ".bias"]
    return out


_HF_LEGACY = (("encoder.layer.", "layers."), ("attention.attention.query.", "attention.q_proj."),
              ("attention.attention.key.", "attention.k_proj."), ("attention.attention.value.", "attention.v_proj."),
              ("attention.output.dense.", "attention.o_proj."), ("intermediate.dense.", "mlp.fc1."),
              ("output.dense.", "mlp.fc2."))


def _hf_tensors(w, depth):
    """Hugging Face transformers names (4.x ``encoder.layer.N...`` or 5.x ``layers.N...``) -> vitlib names."""
    renamed = {}
    for name, value in w.items():
        name = name[len("vit."):] if name.startswith("vit.") else name
        for old, new in _HF_LEGACY:
            name = name.replace(old, new)
        renamed[name] = value
    w = renamed
    out = _torch_outer_tensors(w, "embeddings.patch_embeddings.projection", "embeddings.cls_token",
                               "embeddings.position_embeddings", "layernorm", "classifier")
    for i in range(depth):
        b, v = f"layers.{i}.", f"encoder_block_{i}/"
        for ours, theirs in (("attention/query", "attention.q_proj"), ("attention/key", "attention.k_proj"),
                             ("attention/value", "attention.v_proj"), ("attention/out", "attention.o_proj"),
                             ("mlp/fc1", "mlp.fc1"), ("mlp/fc2", "mlp.fc2")):
            out[v + ours + "/kernel"], out[v + ours + "/bias"] = w[b + theirs + ".weight"].T, w[b + theirs + ".bias"]
        for ours, theirs in (("norm1", "layernorm_before"), ("norm2", "layernorm_after")):
            out[v + ours + "/gamma"], out[v + ours + "/beta"] = w[b + theirs + ".weight"], w[b + theirs + ".bias"]
    return out


def _timm_tensors(w, depth):
    """timm names -> vitlib (layer path, weight name) -> array in Keras layout."""
    d = w["patch_embed.proj.weight"].shape[0]
    out = _torch_outer_tensors(w, "patch_embed.proj", "cls_token", "pos_embed", "norm", "head")
    for i in range(depth):
        b, v = f"blocks.{i}.", f"encoder_block_{i}/"
        qkv, qkv_bias = w[b + "attn.qkv.weight"], w[b + "attn.qkv.bias"]
        for j, name in enumerate(("query", "key", "value")):
            out[v + f"attention/{name}/kernel"] = qkv[j * d:(j + 1) * d].T
            out[v + f"attention/{name}/bias"] = qkv_bias[j * d:(j + 1) * d]
        pairs = {"norm1/gamma": "norm1.weight", "norm1/beta": "norm1.bias", "norm2/gamma": "norm2.weight",
                 "norm2/beta": "norm2.bias", "attention/out/bias": "attn.proj.bias", "mlp/fc1/bias": "mlp.fc1.bias",
                 "mlp/fc2/bias": "mlp.fc2.bias"}
        out.update({v + ours: w[b + theirs] for ours, theirs in pairs.items()})
        for ours, theirs in (("attention/out/kernel", "attn.proj.weight"), ("mlp/fc1/kernel", "mlp.fc1.weight"),
                             ("mlp/fc2/kernel", "mlp.fc2.weight")):
            out[v + ours] = w[b + theirs].T
    return out


def _npz_tensors(w, depth):
    """Official .npz names -> vitlib names, in Keras layout."""
    out = {
        "patch_embedding/projection/kernel": w["embedding/kernel"],
        "patch_embedding/projection/bias": w["embedding/bias"],
        "class_token/token": w["cls"],
        "position_embedding/embeddings": w["Transformer/posembed_input/pos_embedding"],
        "encoder_norm/gamma": w["Transformer/encoder_norm/scale"],
        "encoder_norm/beta": w["Transformer/encoder_norm/bias"],
    }
    if "head/kernel" in w:
        out["head/kernel"], out["head/bias"] = w["head/kernel"], w["head/bias"]
    for i in range(depth):
        b, v = f"Transformer/encoderblock_{i}/", f"encoder_block_{i}/"
        attention = b + "MultiHeadDotProductAttention_1/"
        for name in ("query", "key", "value"):
            kernel = w[attention + f"{name}/kernel"]  # (D, heads, head_dim)
            out[v + f"attention/{name}/kernel"] = kernel.reshape(kernel.shape[0], -1)
            out[v + f"attention/{name}/bias"] = w[attention + f"{name}/bias"].reshape(-1)
        kernel = w[attention + "out/kernel"]  # (heads, head_dim, D)
        out[v + "attention/out/kernel"] = kernel.reshape(-1, kernel.shape[-1])
        out[v + "attention/out/bias"] = w[attention + "out/bias"]
        for ours, theirs in (("norm1", "LayerNorm_0"), ("norm2", "LayerNorm_2")):
            out[v + f"{ours}/gamma"], out[v + f"{ours}/beta"] = w[b + f"{theirs}/scale"], w[b + f"{theirs}/bias"]
        for ours, theirs in (("fc1", "Dense_0"), ("fc2", "Dense_1")):
            out[v + f"mlp/{ours}/kernel"] = w[b + f"MlpBlock_3/{theirs}/kernel"]
            out[v + f"mlp/{ours}/bias"] = w[b + f"MlpBlock_3/{theirs}/bias"]
    return out


def _checkpoint_depth(weights, fmt):
    marker = {"hf": ".layernorm_before.weight", "timm": ".attn.qkv.weight", "npz": "/LayerNorm_0/scale"}[fmt]
    return len([k for k in weights if k.endswith(marker)])


def load_weights(model, source, include_head=True):
    """Load a timm or official ViT checkpoint (path or dict of arrays) into ``model`` (from ``build_vit``).

    Position embeddings are resized when the model's patch grid differs from the checkpoint's. Returns
    a dict: the format read, the number of tensors set, and whether the position embeddings were resized.
    """
    config = getattr(model, "config", None)
    if config is None:
        raise ValueError("load_weights needs a model from vitlib.build_vit (it reads model.config).")
    if config.stem != "patch" or config.pool != "token" or config.pos_embedding != "learned":
        raise ValueError(
            f"Pretrained ViTs use a patch stem, a class token and learned position embeddings; this model has "
            f"stem={config.stem!r}, pool={config.pool!r}, pos_embedding={config.pos_embedding!r}. Build it with "
            "build_vit(variant, stem='patch', pool='token', pos_embedding='learned').")
    weights = read_checkpoint(source)
    fmt = detect_format(weights)
    depth = _checkpoint_depth(weights, fmt)
    if depth != config.depth:
        raise ValueError(f"The checkpoint has {depth} encoder blocks, the model {config.depth}. Build the model with "
                         f"the checkpoint's variant (e.g. depth={depth}).")
    try:
        tensors = {"hf": _hf_tensors, "timm": _timm_tensors, "npz": _npz_tensors}[fmt](weights, depth)
    except KeyError as missing:
        raise ValueError(f"The {fmt} checkpoint lacks tensor {missing}; is it a plain ViT (not a hybrid or "
                         "a distilled model)?") from None
    pos = tensors["position_embedding/embeddings"]
    resized = False
    rows, cols = config.grid_size
    if pos.shape[1] != 1 + rows * cols:
        side = int(round(np.sqrt(pos.shape[1] - 1)))
        if side * side != pos.shape[1] - 1:
            raise ValueError(f"Cannot read the checkpoint's {pos.shape[1]} position embeddings as a class token plus "
                             "a square grid of patches.")
        tensors["position_embedding/embeddings"] = resize_position_embeddings(pos, (rows, cols), old_grid=(side, side))
        resized = True
    if not include_head:
        tensors.pop("head/kernel", None), tensors.pop("head/bias", None)
    variables = {v.path: v for v in model.weights}
    for name, value in tensors.items():
        variable = variables.get(name)
        if variable is None:
            raise ValueError(f"The model has no weight {name!r}; was it built with vitlib.build_vit?")
        if tuple(variable.shape) != value.shape:
            hint = (" Different number of classes: pass include_head=False to keep the model's own head."
                    if name.startswith("head/") else " Build the model with the checkpoint's variant and patch size.")
            raise ValueError(f"Shape mismatch for {name!r}: the model has {tuple(variable.shape)}, the checkpoint "
                             f"gives {value.shape}.{hint}")
    for name, value in tensors.items():
        variables[name].assign(value.astype(keras.backend.standardize_dtype(variables[name].dtype)))
    return {"format": fmt, "tensors": len(tensors), "resized_position_embeddings": resized}
