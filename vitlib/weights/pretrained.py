"""Pretrained weights: load ImageNet-trained ViTs into ``build_vit`` models.

Three formats, the ones users commonly have:

- **Hugging Face transformers** ``ViTForImageClassification`` / ``ViTModel`` weights (``model.safetensors`` of
  e.g. ``google/vit-base-patch16-224``), with the names of transformers 4 or 5;
- **timm** state dicts, as ``.safetensors`` (what the Hugging Face hub serves for ``timm/vit_*`` models, e.g.
  ``timm/vit_base_patch16_224.augreg2_in21k_ft_in1k``), ``.pth`` / ``.pt`` / ``.bin`` (needs PyTorch) or a dict of arrays;
- the **official** ``.npz`` checkpoints of the paper's code (``google-research/vision_transformer``,
  e.g. ``ViT-B_16.npz``).

    model = vitlib.build_vit("B/16", image_size=224, num_classes=1000)
    vitlib.weights.pretrained.load_weights(model, "model.safetensors")

The model must have the checkpoint's width, depth and MLP size, a patch stem and the class token
(``pool="token"``, as the paper's models). A different image size is fine: the position embeddings are
resized by 2-D interpolation (Sec. 3.2 of the paper). A different number of classes needs
``include_head=False``, which keeps the model's own (zero-initialised) head for fine-tuning (and leaves out a
pre-logits layer). Any other mismatch is refused with a message naming the tensor, and so is a checkpoint tensor the
model has no place for (timm's LayerScale, a pre-logits layer with the head kept, ...): ``strict=False`` skips those
knowingly. The number of heads is checked where the file carries it (the ``.npz`` kernels).
Nothing is downloaded here: fetch the file first (e.g. ``huggingface_hub.hf_hub_download``) while online.
"""
import keras
import numpy as np

from vitlib.position_embedding import resize_position_embeddings
from vitlib.weights.checkpoints import Tracked, detect_format, read_checkpoint


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
    renamed, origin = Tracked(), {}
    for original, value in w.items():
        name = original[len("vit."):] if original.startswith("vit.") else original
        for old, new in _HF_LEGACY:
            name = name.replace(old, new)
        renamed[name], origin[name] = value, original
    outer = w
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
    if isinstance(outer, Tracked):  # what was read, under the checkpoint's own names
        outer.used.update(origin[name] for name in renamed.used)
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


# Checkpoint tensors with no place in a vitlib ViT, and what they are (for the message that refuses them).
_HEAD_EXTRAS = ("pre_logits", "pooler.", "vit.pooler.")  # the pre-logits layer (Dense + tanh) of ImageNet-21k models
_KNOWN_EXTRAS = ((".ls1.", "LayerScale (timm's init_values, e.g. DeiT III)"), (".ls2.", "LayerScale"),
                 ("norm_pre.", "a LayerNorm before the encoder (timm's pre_norm, e.g. CLIP ViTs)"),
                 ("reg_token", "register tokens"), ("dist_token", "DeiT's distillation token"),
                 ("head_dist.", "DeiT's distillation head"), ("fc_norm.", "a LayerNorm after mean pooling"))


def load_weights(model, source, include_head=True, strict=True):
    """Load a Hugging Face, timm or official ViT checkpoint (path or dict of arrays) into ``model`` (from
    ``build_vit``).

    Position embeddings are resized when the model's patch grid differs from the checkpoint's. Every tensor of
    the checkpoint is used or reported: tensors the model has no place for (LayerScale, a pre-logits layer, ...)
    are refused with their names, as the model would compute something else than the checkpoint's; with
    ``strict=False`` they are skipped and listed. With ``include_head=False`` the head, and a pre-logits layer
    before it, are left out (fine-tuning, as the paper does). Returns a dict: the format read, the number of
    tensors set, whether the position embeddings were resized, and ``skipped``, the checkpoint's tensors not loaded.
    """
    config = getattr(model, "config", None)
    if config is None:
        raise ValueError("load_weights needs a model from vitlib.build_vit (it reads model.config).")
    if config.stem != "patch" or config.pool != "token" or config.pos_embedding != "learned":
        raise ValueError(
            f"Pretrained ViTs use a patch stem, a class token and learned position embeddings; this model has "
            f"stem={config.stem!r}, pool={config.pool!r}, pos_embedding={config.pos_embedding!r}. Build it with "
            "build_vit(variant, stem='patch', pool='token', pos_embedding='learned').")
    weights = Tracked(read_checkpoint(source))
    fmt = detect_format(weights)
    depth = _checkpoint_depth(weights, fmt)
    if depth != config.depth:
        raise ValueError(f"The checkpoint has {depth} encoder blocks, the model {config.depth}. Build the model with "
                         f"the checkpoint's variant (e.g. depth={depth}).")
    query = dict.get(weights, "Transformer/encoderblock_0/MultiHeadDotProductAttention_1/query/kernel")
    if query is not None and query.ndim == 3 and query.shape[1] != config.num_heads:  # .npz kernels: (D, heads, dim)
        raise ValueError(f"The checkpoint's attention has {query.shape[1]} heads of {query.shape[2]} values, the "
                         f"model {config.num_heads}: build it with num_heads={query.shape[1]}.")
    try:
        tensors = {"hf": _hf_tensors, "timm": _timm_tensors, "npz": _npz_tensors}[fmt](weights, depth)
    except KeyError as missing:
        raise ValueError(f"The {fmt} checkpoint lacks tensor {missing}; is it a plain ViT (not a hybrid or "
                         "a distilled model)?") from None
    skipped = _unused(weights, include_head, strict)
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
    return {"format": fmt, "tensors": len(tensors), "resized_position_embeddings": resized, "skipped": skipped}


def _unused(weights, include_head, strict):
    """The checkpoint's tensors that no model weight took: allowed (and returned) when they belong to the head
    left out, or with ``strict=False``; otherwise refused with their names and what they are."""
    unused = sorted(set(weights) - weights.used)
    head_part = [k for k in unused if k.startswith(_HEAD_EXTRAS)]
    refused = [k for k in unused if strict and (include_head or k not in head_part)]
    if refused:
        kinds = sorted({what for k in refused for marker, what in _KNOWN_EXTRAS if marker in k})
        if any(k in head_part for k in refused):
            kinds.append("a pre-logits layer (Dense + tanh before the head, as in ImageNet-21k checkpoints): "
                         "leave it out with the head for fine-tuning, include_head=False, as the paper does")
        shown = ", ".join(refused[:6]) + (f" and {len(refused) - 6} more" if len(refused) > 6 else "")
        raise ValueError(f"The checkpoint has {len(refused)} tensors this ViT has no place for: {shown}"
                         f"{' (' + '; '.join(kinds) + ')' if kinds else ''}. Loaded without them, the model would "
                         "compute something else than the checkpoint's. Pass strict=False to load the rest and skip "
                         "these knowingly.")
    return unused
