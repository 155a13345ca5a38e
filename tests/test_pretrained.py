"""Pretrained-weight import, checked against an independent implementation: Hugging Face transformers'
ViTForImageClassification (PyTorch, CPU) with random weights. The timm and official .npz layouts are
written from the same weights, and every route must give transformers' logits."""
import numpy as np
import pytest
from keras import ops

import vitlib
from vitlib.weights import pretrained

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

SIZE, PATCH, WIDTH, DEPTH, HEADS, MLP, CLASSES = 32, 8, 64, 2, 4, 128, 5


@pytest.fixture(scope="module")
def reference():
    torch.manual_seed(0)
    config = transformers.ViTConfig(hidden_size=WIDTH, num_hidden_layers=DEPTH, num_attention_heads=HEADS,
                                    intermediate_size=MLP, image_size=SIZE, patch_size=PATCH, num_labels=CLASSES,
                                    layer_norm_eps=1e-6, hidden_act="gelu")
    model = transformers.ViTForImageClassification(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    images = np.random.default_rng(0).random((3, SIZE, SIZE, 3)).astype("float32")
    with torch.no_grad():
        logits = model(pixel_values=torch.from_numpy(images.transpose(0, 3, 1, 2))).logits.numpy()
    weights = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return weights, images, logits


def ours(**kw):
    return vitlib.build_vit(None, image_size=kw.pop("image_size", SIZE), patch_size=PATCH, hidden_size=WIDTH,
                            depth=DEPTH, num_heads=kw.pop("num_heads", HEADS), mlp_dim=MLP,
                            num_classes=kw.pop("num_classes", CLASSES), **kw)


def logits_of(model, images):
    return ops.convert_to_numpy(model(images))


def as_timm(w):
    """The same weights in timm's VisionTransformer layout (fused qkv, blocks.N, norm, head)."""
    w = {k.replace("vit.", "", 1): v for k, v in w.items()}
    out = {"cls_token": w["embeddings.cls_token"], "pos_embed": w["embeddings.position_embeddings"],
           "patch_embed.proj.weight": w["embeddings.patch_embeddings.projection.weight"],
           "patch_embed.proj.bias": w["embeddings.patch_embeddings.projection.bias"],
           "norm.weight": w["layernorm.weight"], "norm.bias": w["layernorm.bias"],
           "head.weight": w["classifier.weight"], "head.bias": w["classifier.bias"]}
    for i in range(DEPTH):
        h, t = f"layers.{i}.", f"blocks.{i}."
        a = h + "attention."
        out[t + "attn.qkv.weight"] = np.concatenate([w[a + f"{n}_proj.weight"] for n in "qkv"])
        out[t + "attn.qkv.bias"] = np.concatenate([w[a + f"{n}_proj.bias"] for n in "qkv"])
        for theirs, mine in (("attn.proj", "attention.o_proj"), ("mlp.fc1", "mlp.fc1"), ("mlp.fc2", "mlp.fc2"),
                             ("norm1", "layernorm_before"), ("norm2", "layernorm_after")):
            out[t + theirs + ".weight"], out[t + theirs + ".bias"] = w[h + mine + ".weight"], w[h + mine + ".bias"]
    return out


def as_npz(w):
    """The same weights in the layout of the paper's official .npz checkpoints."""
    w = {k.replace("vit.", "", 1): v for k, v in w.items()}
    hd = WIDTH // HEADS
    out = {"cls": w["embeddings.cls_token"], "Transformer/posembed_input/pos_embedding": w["embeddings.position_embeddings"],
           "embedding/kernel": w["embeddings.patch_embeddings.projection.weight"].transpose(2, 3, 1, 0),
           "embedding/bias": w["embeddings.patch_embeddings.projection.bias"],
           "Transformer/encoder_norm/scale": w["layernorm.weight"], "Transformer/encoder_norm/bias": w["layernorm.bias"],
           "head/kernel": w["classifier.weight"].T, "head/bias": w["classifier.bias"]}
    for i in range(DEPTH):
        h, b = f"layers.{i}.", f"Transformer/encoderblock_{i}/"
        att = b + "MultiHeadDotProductAttention_1/"
        for n, name in zip("qkv", ("query", "key", "value")):
            out[att + f"{name}/kernel"] = w[h + f"attention.{n}_proj.weight"].T.reshape(WIDTH, HEADS, hd)
            out[att + f"{name}/bias"] = w[h + f"attention.{n}_proj.bias"].reshape(HEADS, hd)
        out[att + "out/kernel"] = w[h + "attention.o_proj.weight"].T.reshape(HEADS, hd, WIDTH)
        out[att + "out/bias"] = w[h + "attention.o_proj.bias"]
        for ln, mine in (("LayerNorm_0", "layernorm_before"), ("LayerNorm_2", "layernorm_after")):
            out[b + ln + "/scale"], out[b + ln + "/bias"] = w[h + mine + ".weight"], w[h + mine + ".bias"]
        for dense, mine in (("Dense_0", "mlp.fc1"), ("Dense_1", "mlp.fc2")):
            out[b + f"MlpBlock_3/{dense}/kernel"] = w[h + mine + ".weight"].T
            out[b + f"MlpBlock_3/{dense}/bias"] = w[h + mine + ".bias"]
    return out


def as_hf_legacy(w):
    """transformers 4.x names, as in older hub files such as google/vit-base-patch16-224."""
    renames = [("layers.", "encoder.layer."), ("attention.q_proj.", "attention.attention.query."),
               ("attention.k_proj.", "attention.attention.key."), ("attention.v_proj.", "attention.attention.value."),
               ("attention.o_proj.", "attention.output.dense."), ("mlp.fc1.", "intermediate.dense."),
               ("mlp.fc2.", "output.dense.")]
    out = {}
    for k, v in w.items():
        for old, new in renames:
            k = k.replace(old, new)
        out[k] = v
    return out


def test_hugging_face_weights_give_the_reference_logits(reference):
    weights, images, expected = reference
    model = ours()
    info = pretrained.load_weights(model, weights)
    assert info == {"format": "hf", "tensors": 6 + 2 + 16 * DEPTH, "resized_position_embeddings": False, "skipped": []}
    np.testing.assert_allclose(logits_of(model, images), expected, atol=1e-4, rtol=1e-4)
    assert np.abs(expected).max() > 0.1 and np.ptp(expected, axis=0).max() > 1e-3  # not the zero head; images matter


@pytest.mark.parametrize("layout", ["hf_legacy_safetensors", "timm_safetensors", "official_npz"])
def test_every_file_layout_gives_the_reference_logits(reference, tmp_path, layout):
    weights, images, expected = reference
    if layout == "official_npz":
        path = tmp_path / "ViT-custom.npz"
        np.savez(path, **as_npz(weights))
    else:
        from safetensors.numpy import save_file

        path = tmp_path / "model.safetensors"
        save_file({k: np.ascontiguousarray(v) for k, v in
                   (as_hf_legacy(weights) if layout.startswith("hf") else as_timm(weights)).items()}, str(path))
    model = ours()
    info = pretrained.load_weights(model, path)
    assert info["format"] == {"hf_legacy_safetensors": "hf", "timm_safetensors": "timm", "official_npz": "npz"}[layout]
    assert info["skipped"] == []  # every tensor of the file was used
    np.testing.assert_allclose(logits_of(model, images), expected, atol=1e-4, rtol=1e-4)


def test_a_larger_image_resizes_the_position_embeddings(reference):
    weights, images, _ = reference
    model = ours(image_size=48)  # 6x6 patches instead of 4x4
    assert pretrained.load_weights(model, weights)["resized_position_embeddings"]
    expected = vitlib.resize_position_embeddings(weights["vit.embeddings.position_embeddings"], (6, 6), old_grid=(4, 4))
    np.testing.assert_allclose(ops.convert_to_numpy(model.get_layer("position_embedding").embeddings), expected, rtol=1e-6)
    assert np.isfinite(logits_of(model, np.zeros((1, 48, 48, 3), "float32"))).all()


def test_mismatches_are_refused_with_a_clear_message(reference, tmp_path):
    weights, images, _ = reference
    with pytest.raises(ValueError, match=r"head/kernel.*include_head=False"):
        pretrained.load_weights(ours(num_classes=10), weights)
    fine_tune = ours(num_classes=10)
    pretrained.load_weights(fine_tune, weights, include_head=False)
    assert np.all(ops.convert_to_numpy(fine_tune.get_layer("head").kernel) == 0)
    with pytest.raises(ValueError, match="Shape mismatch for 'patch_embedding/projection/kernel'"):
        pretrained.load_weights(vitlib.build_vit(None, image_size=SIZE, patch_size=4, hidden_size=WIDTH, depth=DEPTH,
                                                 num_heads=HEADS, mlp_dim=MLP, num_classes=CLASSES), weights)
    with pytest.raises(ValueError, match="2 encoder blocks, the model 1"):
        pretrained.load_weights(vitlib.build_vit(None, image_size=SIZE, patch_size=PATCH, hidden_size=WIDTH, depth=1,
                                                 num_heads=HEADS, mlp_dim=MLP, num_classes=CLASSES), weights)
    with pytest.raises(ValueError, match="pool='gap'"):
        pretrained.load_weights(ours(pool="gap"), weights)
    with pytest.raises(FileNotFoundError, match="No checkpoint file"):
        pretrained.load_weights(ours(), tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="Not a ViT checkpoint"):
        pretrained.load_weights(ours(), {"conv1.weight": np.zeros((3, 3))})
    with pytest.raises(ValueError, match="Unknown checkpoint format '.h5'"):
        (tmp_path / "w.h5").write_bytes(b"x")
        pretrained.load_weights(ours(), tmp_path / "w.h5")


def test_tensors_the_model_has_no_place_for_are_refused_by_name(reference):
    weights, images, expected = reference
    extra = {"pre_logits/kernel": np.ones((WIDTH, WIDTH), "float32"), "pre_logits/bias": np.zeros(WIDTH, "float32")}
    in21k = {**as_npz(weights), **extra}  # an ImageNet-21k .npz: a pre-logits layer before the head
    with pytest.raises(ValueError, match=r"2 tensors this ViT has no place for: pre_logits/bias, pre_logits/kernel "
                                         r"\(a pre-logits layer.*include_head=False.*strict=False"):
        pretrained.load_weights(ours(), in21k)
    fine_tune = ours(num_classes=10)
    assert pretrained.load_weights(fine_tune, in21k, include_head=False)["skipped"] == sorted(extra)
    knowingly = ours()
    assert pretrained.load_weights(knowingly, in21k, strict=False)["skipped"] == sorted(extra)
    np.testing.assert_allclose(logits_of(knowingly, images), expected, atol=1e-4, rtol=1e-4)

    layer_scale = {**as_timm(weights), "blocks.0.ls1.gamma": np.ones(WIDTH, "float32"),
                   "blocks.0.ls2.gamma": np.ones(WIDTH, "float32"), "norm_pre.weight": np.ones(WIDTH, "float32")}
    with pytest.raises(ValueError, match=r"3 tensors .*blocks\.0\.ls1\.gamma, blocks\.0\.ls2\.gamma, norm_pre\.weight "
                                         r"\(.*LayerScale.*LayerNorm before the encoder.*something else"):
        pretrained.load_weights(ours(), layer_scale)
    with pytest.raises(ValueError, match="blocks.0.ls1.gamma"):  # the head left out does not excuse them
        pretrained.load_weights(ours(), layer_scale, include_head=False)

    pooled = {**weights, "vit.pooler.dense.weight": np.ones((WIDTH, WIDTH), "float32")}  # transformers' ViTModel
    with pytest.raises(ValueError, match=r"vit\.pooler\.dense\.weight \(a pre-logits layer"):
        pretrained.load_weights(ours(), pooled)
    assert pretrained.load_weights(ours(), pooled, include_head=False)["skipped"] == ["vit.pooler.dense.weight"]


def test_a_checkpoint_with_another_number_of_heads_is_refused(reference):
    weights, _, _ = reference
    with pytest.raises(ValueError, match=r"attention has 4 heads of 16 values, the model 2: build it with num_heads=4"):
        pretrained.load_weights(ours(num_heads=2), as_npz(weights))


@pytest.mark.parametrize("name", ["model.safetensors", "ViT-B_16.npz", "pytorch_model.bin"])
def test_a_damaged_file_is_an_error_naming_it(reference, tmp_path, name):
    from safetensors.numpy import save_file

    weights, _, _ = reference
    whole = tmp_path / "whole"
    if name.endswith(".npz"):
        np.savez(whole, **as_npz(weights))
        whole = tmp_path / "whole.npz"
    elif name.endswith(".bin"):
        torch.save({k: torch.from_numpy(v) for k, v in weights.items()}, whole)
    else:
        save_file({k: np.ascontiguousarray(v) for k, v in weights.items()}, str(whole))
    broken = tmp_path / name
    broken.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # a download cut off half-way
    with pytest.raises(ValueError, match=rf"Could not read '.*{name}': the file is damaged or incomplete"):
        pretrained.load_weights(ours(), broken)
    assert pretrained.load_weights(ours(), whole.rename(tmp_path / ("whole_" + name)))["skipped"] == []
