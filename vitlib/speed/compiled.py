"""One compiled training model, shared by TensorFlow runs that differ only in their seed.

Compiling a ViT's training step takes seconds: with XLA about 10 s on the 2-core machine for notebook 07's small
ViT, as long as the rest of its 10-epoch run. So :func:`vitlib.training.train` keeps the model it compiled last
(for ViTs of up to ``MAX_PARAMETERS``). A run with the same configuration except the seed, the same architecture
and data of the same shapes reuses it: it loads its own freshly built initial weights and the states of its random
layers into that model, and zeroes the optimiser. Its numbers equal those of a fresh compile (a test checks it).
Only the latest model is kept, so older runs hold no memory. JAX and PyTorch always compile afresh: there, a
compiled model trained a second time from reset weights gave other numbers (see :func:`vitlib.experiments.run_grid`).
"""
import dataclasses
import json

import keras
from keras import ops

_LAST = {}  # key -> (compiled training model, the ViT inside it); at most one entry
MAX_PARAMETERS = 10_000_000  # bigger ViTs are not kept (ViT-B/16 with AdamW's slots would hold about 1 GB)


def reset_optimizer(optimizer):
    """Back to the state of a freshly built optimiser: step count and every slot (Adam's moments) zero."""
    for variable in optimizer.variables:
        variable.assign(ops.zeros(variable.shape, variable.dtype))


def training_model(config, vit, wrapper, compile_fn, shapes, reuse=True):
    """``(model, vit)`` to train: ``compile_fn(wrapper)`` (``wrapper``: the uncompiled training model around ``vit``),
    or the last compiled model, which then starts from ``wrapper``'s variables. ``shapes``: whatever else the
    compiled step depends on (the data's shapes, steps per epoch and per call). ``reuse=False``: always compile
    (and keep nothing), as under a ``tf.distribute`` strategy, whose models belong to its scope."""
    if not reuse or keras.backend.backend() != "tensorflow" or vit.count_params() > MAX_PARAMETERS:
        _LAST.clear()
        return compile_fn(wrapper), vit
    settings = {**dataclasses.asdict(config), "seed": None}
    key = json.dumps([settings, vit.get_config(), shapes, keras.config.dtype_policy().name], sort_keys=True, default=str)
    if key in _LAST:
        model, shared_vit = _LAST[key]
        if [v.shape for v in model.variables] == [v.shape for v in wrapper.variables]:
            for target, source in zip(model.variables, wrapper.variables):
                target.assign(source)
            reset_optimizer(model.optimizer)
            model._initial_epoch = None  # set by BackupAndRestore when a run resumed: fit would start there again
            return model, shared_vit
    _LAST.clear()
    _LAST[key] = compile_fn(wrapper), vit
    return _LAST[key]


def forget():
    """Drop the kept model (the next run compiles afresh)."""
    _LAST.clear()
