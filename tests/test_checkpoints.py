"""vitlib.weights.checkpoints: every file kind it reads gives the same dict of NumPy arrays, the naming scheme is told
by the tensor names, and a missing, unknown or damaged file is an error naming it. (Mapping the tensors onto a model
is test_pretrained's.)"""
import numpy as np
import pytest

from vitlib.weights import checkpoints

pytestmark = pytest.mark.backend_independent

TENSORS = {"patch_embed.proj.weight": np.arange(6, dtype="float32").reshape(2, 3), "cls_token": np.ones((1, 1, 3), "float32")}


def written(tmp_path, suffix):
    path = tmp_path / f"weights{suffix}"
    if suffix == ".npz":
        np.savez(path, **TENSORS)
    elif suffix == ".safetensors":
        from safetensors.numpy import save_file

        save_file({k: np.ascontiguousarray(v, dtype="float32") for k, v in TENSORS.items()}, str(path))
    else:
        torch = pytest.importorskip("torch")
        torch.save({"state_dict": {k: torch.tensor(v) for k, v in TENSORS.items()}}, str(path))
    return path


@pytest.mark.parametrize("suffix", list(checkpoints.FILE_READERS))
def test_every_file_kind_reads_as_the_same_arrays(tmp_path, suffix):
    if suffix == ".safetensors":
        pytest.importorskip("safetensors")
    read = checkpoints.read_checkpoint(written(tmp_path, suffix))
    assert sorted(read) == sorted(TENSORS)
    for name, value in TENSORS.items():
        np.testing.assert_array_equal(read[name], value)


def test_a_dict_is_read_as_it_is_in_float32():
    read = checkpoints.read_checkpoint({"a": [1, 2]})
    assert read["a"].dtype == np.float32 and read["a"].tolist() == [1.0, 2.0]


@pytest.mark.parametrize("names, scheme", [
    (["vit.embeddings.patch_embeddings.projection.weight"], "hf"),
    (["patch_embed.proj.weight", "blocks.0.attn.qkv.weight"], "timm"),
    (["embedding/kernel", "Transformer/encoderblock_0/MlpBlock_3/Dense_0/kernel"], "npz"),
])
def test_the_naming_scheme_is_told_by_the_tensor_names(names, scheme):
    assert checkpoints.detect_format(dict.fromkeys(names)) == scheme


def test_other_names_are_refused_with_the_names_found_and_those_expected():
    with pytest.raises(ValueError, match=r"tensor names start conv1.weight.*Hugging Face"):
        checkpoints.detect_format({"conv1.weight": None})


def test_missing_unknown_and_damaged_files_are_errors_naming_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="No checkpoint file at"):
        checkpoints.read_checkpoint(tmp_path / "absent.npz")
    (tmp_path / "weights.h5").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"Unknown checkpoint format '.h5'"):
        checkpoints.read_checkpoint(tmp_path / "weights.h5")
    (tmp_path / "weights.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match=r"Could not read .*weights.npz.*damaged or incomplete"):
        checkpoints.read_checkpoint(tmp_path / "weights.npz")


def test_tracked_records_the_tensors_read():
    tracked = checkpoints.Tracked(TENSORS)
    tracked["cls_token"]
    assert tracked.used == {"cls_token"}
