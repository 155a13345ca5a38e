"""The speed layer: what makes vitlib train faster on TensorFlow, behind one switch that is off by default.

The teaching core (patches ... costs) and the training loop are plain Keras. With the switch on they hand four things
to this package. The AdamW and compiled reuse give the numbers of the plain path; the hand-written gradients compute
the same functions but round differently (a run may end an image apart); seeding gives the same numbers for seed 0
and other numbers for other seeds (another shuffle of the data: TensorFlow's global seed stays 0). The tests of each
module check these; a run is reproducible with the same switch, not across it:

- :mod:`~vitlib.speed.gradients`: LayerNorm and GELU with hand-written gradients, swapped into a built ViT;
- :mod:`~vitlib.speed.adamw`: Keras' AdamW with an update that TensorFlow traces faster;
- :mod:`~vitlib.speed.compiled`: a compiled training model reused by the next run that differs only in its seed, and
  one per architecture for the many short runs of ``training.experiments.run_grid``;
- :mod:`~vitlib.speed.seeding`: seeding a run without making TensorFlow rebuild its traced steps.

It is also the one place where vitlib reaches into Keras internals, so that a Keras upgrade is checked here alone:
:func:`build_before_fit` (a Keras bug's work-around that multi-worker training needs, switch or not) lives here too.

The training recipes turn it on (``TrainConfig.speed=True``): ``training.loop.train`` and ``run_grid`` run inside
``switched(config.speed)``. ``VITLIB_SPEED=off`` in the environment keeps it off whatever a recipe says (the test suite
runs the plain path so). These tricks use Keras internals, so on a Keras they were not checked against
(``TESTED_KERAS``) the switch stays off, with one warning, and training runs on plain Keras.

Each part can be left out on its own, to measure what it buys (``benchmarks/speed_parts.py``): with the switch on,
``VITLIB_SPEED_PARTS`` lists the parts that act, comma-separated, of ``gradients`` (:func:`accelerate`), ``adamw``
(:func:`optimizer` and :func:`build_optimizer`), ``compiled`` (:func:`training_model`, :func:`shared_model`) and
``seeding`` (:func:`set_seed`); unset or ``all``: every part; empty or ``none``: none (the switch on, nothing swapped).
A part left out gives the plain path, as the switch off does (:func:`parts`).
"""
import contextlib
import importlib
import os
import warnings

import keras

TESTED_KERAS = ("3.15.",)  # Keras versions whose internals this package was checked against
_PRIVATE = {  # the Keras internals it uses, checked before it switches on
    "keras.src.backend.common.global_state": ("set_global_attribute",),
    "keras.src.random.seed_generator": ("GLOBAL_SEED_GENERATOR",),
    "keras.src.utils.rng_utils": ("GLOBAL_RANDOM_SEED",),
}
PARTS = ("gradients", "adamw", "compiled", "seeding")  # what VITLIB_SPEED_PARTS may name
_ON = [False]
_ASKED = []  # what each switch entered and not yet left asked for, outermost first


class SpeedLayerOff(UserWarning):
    """The speed layer was asked for but stays off (a Keras it was not checked against)."""


def compatible():
    """Whether this Keras is one the speed layer was checked against and has the internals it uses."""
    if not keras.version().startswith(TESTED_KERAS):
        return False
    try:
        modules = {name: importlib.import_module(name) for name in _PRIVATE}
    except ImportError:
        return False
    hooks = [(keras.optimizers.AdamW, "_apply_weight_decay"), (keras.optimizers.AdamW, "_backend_update_step"),
             (keras.layers.Layer, "_flatten_layers"), (keras.Model, "_symbolic_build")]
    return (all(hasattr(modules[m], name) for m, names in _PRIVATE.items() for name in names)
            and all(hasattr(owner, name) for owner, name in hooks))


def enabled():
    """Whether the speed layer is on now."""
    return _ON[0]


@contextlib.contextmanager
def switched(on=True):
    """Run the block with the speed layer on (``on=True``, where allowed) or off, then restore the previous state.
    It stays off under ``VITLIB_SPEED=off``, and, with one warning, on a Keras it was not checked against."""
    previous = _ON[0]
    asked = bool(on) and os.environ.get("VITLIB_SPEED", "on").lower() not in ("off", "0", "false")
    if asked and _ASKED and _ASKED[-1]:  # inside a switch that asked the same (a run, then its compile): its answer
        _ON[0] = previous                # stands, and a refusal is warned about once
    else:
        _ON[0] = asked and _allowed()
    _ASKED.append(asked)
    try:
        yield _ON[0]
    finally:
        _ASKED.pop()
        _ON[0] = previous


def _allowed():
    if compatible():
        return True
    warnings.warn(f"vitlib.speed stays off: Keras {keras.version()} is not one it was checked against "
                  f"({', '.join(v + 'x' for v in TESTED_KERAS)}); training runs on plain Keras, only slower.",
                  SpeedLayerOff, stacklevel=4)
    return False


def parts():
    """The parts of the speed layer that act while it is on: ``VITLIB_SPEED_PARTS`` (comma-separated names of
    ``PARTS``; unset or ``all``: every part; empty or ``none``: none), read at each use."""
    names = os.environ.get("VITLIB_SPEED_PARTS", "all").replace(" ", "").lower()
    if names == "all":
        return PARTS
    chosen = tuple(name for name in names.split(",") if name and name != "none")
    unknown = [name for name in chosen if name not in PARTS]
    if unknown:
        raise ValueError(f"VITLIB_SPEED_PARTS names {', '.join(map(repr, unknown))}; the parts are "
                         f"{', '.join(PARTS)} (or all, or none).")
    return tuple(name for name in PARTS if name in chosen)


def _active(part):
    return _ON[0] and part in parts()


def _tensorflow(part):
    return _active(part) and keras.backend.backend() == "tensorflow"


def accelerate(model):
    """``model`` with its LayerNorms and GELUs computing their gradients by hand (:mod:`~vitlib.speed.gradients`):
    the same weights and outputs. Unchanged when the speed layer is off, or not on TensorFlow."""
    if _tensorflow("gradients"):
        from vitlib.speed import gradients

        gradients.swap_in(model)
    return model


def optimizer(plain):
    """The optimiser to compile with: ``plain``, or for Keras' AdamW with the speed layer on, :class:`vitlib.speed.
    adamw.AdamW` with its configuration (the same updates, traced faster)."""
    if _tensorflow("adamw") and type(plain) is keras.optimizers.AdamW:
        from vitlib.speed import adamw

        return adamw.AdamW.from_config(plain.get_config())
    return plain


def build_optimizer(model):
    """With the speed layer on: create a compiled model's optimiser slots now. Created while TensorFlow traces the
    first step, they make it trace the whole step a second time."""
    if _tensorflow("adamw"):
        model.optimizer.build(model.trainable_variables)


def set_seed(seed):
    """``keras.utils.set_random_seed(seed)``; with the speed layer on, without resetting TensorFlow's global seed,
    which makes TensorFlow rebuild every traced step (:mod:`~vitlib.speed.seeding`)."""
    if _active("seeding"):
        from vitlib.speed import seeding

        return seeding.set_seed(seed)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}.")
    keras.utils.set_random_seed(seed)


def training_model(key, wrapper, compile_fn, vit, reuse=True):
    """``(compile_fn(wrapper), vit)``; with the speed layer on (TensorFlow, ``reuse``), the model compiled last for the
    same ``key`` instead, loaded with ``wrapper``'s weights (:mod:`~vitlib.speed.compiled`)."""
    if _tensorflow("compiled") and reuse:
        from vitlib.speed import compiled

        return compiled.training_model(key, wrapper, compile_fn, vit)
    return compile_fn(wrapper), vit


def shared_model(key, compile_fn):
    """``(model, forward)`` for one of many short runs: with the speed layer on (TensorFlow), the model ``compile_fn()``
    compiled the first time for ``key`` (an architecture and budget), its optimiser zeroed for this run, and its
    ``model(batch, training=False)`` traced once; else ``(None, None)``: the caller compiles its own."""
    if not _tensorflow("compiled"):
        return None, None
    from vitlib.speed import compiled

    model, forward = compiled.shared_model(key, compile_fn)
    compiled.reset_optimizer(model.optimizer)
    return model, forward


def build_before_fit(model, element_spec):
    """Build a compiled model, its loss, metrics and optimiser, on a batch of ``element_spec`` (a ``tf.data`` pipeline's)
    and keep ``fit`` from building it again: Keras 3's ``fit`` under a multi-worker strategy builds on a batch averaged
    across workers, which fails (tensorflow#72388). Needed whether or not the speed layer is on; on a Keras this package
    was not checked against it is skipped with one warning (a newer Keras may have fixed the bug)."""
    if _allowed():
        from vitlib.speed import compiled

        compiled.build_before_fit(model, element_spec)
