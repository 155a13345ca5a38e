"""Argument checks shared by the public functions and layers.

Every check raises ``ValueError`` naming what was given, what was expected and how to fix it.
"""
import contextlib
import numbers
import os
from pathlib import Path


def positive_int(name, value, hint=""):
    """Return ``value`` as an ``int`` if it is a positive integer, else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.{' ' + hint if hint else ''}")
    return int(value)


def int_pair(name, value, hint=""):
    """Accept ``n`` or ``(h, w)`` and return ``(h, w)`` of positive ints."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name} must be an int or a pair (height, width), got {value!r}.")
    return tuple(positive_int(name, v, hint) for v in value)


def rate(name, value):
    """A probability in [0, 1), such as a dropout rate."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}. Use 0.0 to switch it off.")
    return float(value)


def choice(name, value, options):
    if value not in options:
        raise ValueError(f"Unknown {name} {value!r}. Choose one of: {', '.join(map(repr, options))}.")
    return value


def patch_size(value):
    """A patch side P: an int, or a pair (P, P). Patches are square in vitlib, as in the paper."""
    if isinstance(value, (tuple, list)) and len(value) == 2 and value[0] == value[1]:
        value = value[0]
    if isinstance(value, (tuple, list)):
        raise ValueError(
            f"patch_size must be one integer P (patches are P x P, as in the paper), got {tuple(value)!r}. "
            "For a non-square image pick a P that divides both its height and its width."
        )
    return positive_int("patch_size", value)


def divisible(image_size, patch_size_):
    """Return the patch grid ``(rows, cols)`` for an image, or explain why it does not tile."""
    (h, w), p = int_pair("image_size", image_size), patch_size(patch_size_)
    if p > min(h, w):
        raise ValueError(
            f"Patch size {p} is larger than the {h}x{w} image: there is not one whole patch. "
            f"Use a patch size of at most {min(h, w)} that divides {h} and {w}, or a larger image."
        )
    if h % p or w % p:
        fits = [q for q in range(1, min(h, w) + 1) if h % q == 0 and w % q == 0]
        raise ValueError(
            f"Image size {h}x{w} is not divisible by patch size {p}: {h}/{p} = {h / p:.2f}, "
            f"{w}/{p} = {w / p:.2f}. Resize or crop the image to a multiple of {p} "
            f"(e.g. {h // p * p}x{w // p * p}), or pick a patch size from {fits}."
        )
    return h // p, w // p


def heads_divide(width, num_heads):
    """Each of the heads gets width / num_heads values: the heads must divide the width."""
    if width % num_heads:
        near = sorted((d for d in range(1, width + 1) if width % d == 0), key=lambda d: abs(d - num_heads))[0]
        raise ValueError(
            f"The width {width} (hidden_size) is not divisible by num_heads={num_heads}: each head gets "
            f"width / num_heads values. Change one of them, e.g. num_heads={near}."
        )


def width_multiple(kind, width, multiple):
    """A position embedding ``kind`` whose table splits the width into ``multiple`` parts (sin-cos pairs)."""
    if width % multiple:
        raise ValueError(
            f"pos_embedding={kind!r} needs a width (hidden_size) divisible by {multiple}, got {width}. "
            f"Use {width + (-width) % multiple}."
        )


def fused_without_dropout(attention_impl, attention_dropout):
    """The fused kernels never materialise the attention weights, so they cannot drop any of them."""
    if attention_impl == "fused" and attention_dropout > 0:
        raise ValueError(
            f"attention_impl='fused' cannot apply attention dropout (attention_dropout={attention_dropout}). "
            "Use attention_impl='explicit' or 'auto', or attention_dropout=0."
        )


def image_shape(shape, where="images"):
    """Check a (batch, height, width, channels) shape with known height, width and channels."""
    shape = tuple(shape)
    if len(shape) != 4:
        raise ValueError(
            f"{where} must have rank 4, (batch, height, width, channels), got shape {shape}. "
            "For a single image, add a batch axis: images[None]; for grayscale (B, H, W), add a "
            "channel axis: images[..., None]."
        )
    if any(d is None for d in shape[1:]):
        raise ValueError(f"{where} need known height, width and channels, got shape {shape}.")
    return tuple(int(d) for d in shape[1:])


@contextlib.contextmanager
def output_folder(path, what="out_dir"):
    """Create the folder ``path`` (and missing parents) for a run's files, or refuse a file or a place that cannot be
    written with a ValueError. If the block fails, the folders created here are removed again while still empty."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {str(path)!r} is a file, not a folder: give a folder path (it is created if missing).")
    missing = [p for p in (path, *path.parents) if not p.exists()]  # deepest first
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"Cannot create the output folder {str(path)!r} ({error.strerror or error}): choose a folder "
                         "you can write to.") from None
    if not os.access(path, os.W_OK):
        raise ValueError(f"The output folder {str(path)!r} is not writable: choose a folder you can write to.")
    try:
        yield path
    except BaseException:
        for folder in missing:
            with contextlib.suppress(OSError):  # rmdir removes only empty folders
                folder.rmdir()
        raise
