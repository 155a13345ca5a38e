"""Argument checks shared by the public functions and layers.

Every check raises ``ValueError`` naming what was given, what was expected and how to fix it.
"""
import numbers


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


def divisible(image_size, patch_size):
    """Return the patch grid ``(rows, cols)`` for an image, or explain why it does not tile."""
    (h, w), (p, _) = int_pair("image_size", image_size), int_pair("patch_size", patch_size)
    if h % p or w % p:
        fits = [q for q in range(1, min(h, w) + 1) if h % q == 0 and w % q == 0]
        raise ValueError(
            f"Image size {h}x{w} is not divisible by patch size {p}: {h}/{p} = {h / p:.2f}, "
            f"{w}/{p} = {w / p:.2f}. Resize or crop the image to a multiple of {p} "
            f"(e.g. {h // p * p}x{w // p * p}), or pick a patch size from {fits}."
        )
    return h // p, w // p


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
