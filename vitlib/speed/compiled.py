"""Compiled models kept for the next run, and built before ``fit``: part of the speed layer (:mod:`vitlib.speed`).

Compiling a ViT's training step takes seconds, often as long as a short run itself (benchmarks/RESULTS.md). Two
users keep a compiled model instead of compiling again:

- :func:`training_model`, for ``training.loop.train``: a run with the same configuration except the seed, the same
  architecture and data of the same shapes reuses the model compiled last (for ViTs of up to ``MAX_PARAMETERS``);
- :func:`shared_model`, for ``training.experiments.run_grid``: one compiled model per architecture and budget, and its
  forward pass traced once for evaluation.

A reused model loads the new run's freshly built initial weights and the states of its random layers, and its
optimiser is zeroed: its numbers equal those of a fresh compile (tests/test_compiled.py). TensorFlow only: on JAX and
PyTorch a compiled model trained a second time from reset weights gave other numbers (some trainer state survives).
"""
import keras
from keras import ops

MAX_PARAMETERS = 10_000_000  # bigger ViTs are not kept (ViT-B/16 with AdamW's slots would hold about 1 GB)
_LAST = {}  # key -> (compiled training model, the ViT inside it); at most one entry, so older runs hold no memory
_SHARED = {}  # key -> (compiled model, its traced forward pass), for run_grid


def reset_optimizer(optimizer):
    """Back to the state of a freshly built optimiser: step count and every slot (Adam's moments) zero, so that one
    compiled model trains the next run from new weights as a fresh compile would (here, and FlexiViT's views, which
    share one optimiser). Plain Keras: no internals."""
    for variable in optimizer.variables:
        variable.assign(ops.zeros(variable.shape, variable.dtype))


def training_model(key, wrapper, compile_fn, vit):
    """``(model, vit)`` to train: ``compile_fn(wrapper)`` (``wrapper``: the uncompiled training model around ``vit``),
    or the model compiled last under the same ``key`` (a string naming everything the compiled step depends on but
    the seed), which then starts from ``wrapper``'s variables."""
    if vit.count_params() > MAX_PARAMETERS:
        _LAST.clear()
        return compile_fn(wrapper), vit
    key = (key, keras.config.dtype_policy().name)
    if key in _LAST:
        model, shared_vit = _LAST[key]
        if [v.shape for v in model.variables] == [v.shape for v in wrapper.variables]:
            for target, source in zip(model.variables, wrapper.variables):
                target.assign(source)
            reset_optimizer(model.optimizer)
            return model, shared_vit
    _LAST.clear()
    _LAST[key] = compile_fn(wrapper), vit
    return _LAST[key]


def shared_model(key, compile_fn):
    """``(model, forward)``: the model ``compile_fn()`` compiled for ``key`` (an architecture and budget) the first
    time, and its ``model(batch, training=False)`` traced once by TensorFlow for any batch size."""
    if key not in _SHARED:
        import tensorflow as tf

        model = compile_fn()
        spec = tf.TensorSpec((None, *model.input_shape[1:]), model.inputs[0].dtype)
        _SHARED[key] = model, tf.function(lambda batch: model(batch, training=False), input_signature=[spec])
    return _SHARED[key]


def build_before_fit(model, element_spec):
    """Build ``model`` with its compiled loss, metrics and optimiser on a one-image batch of ``element_spec``, and make
    ``fit``'s own build (which fails under a multi-worker strategy, tensorflow#72388) do nothing."""
    import tensorflow as tf

    batch = tf.nest.map_structure(lambda s: keras.KerasTensor((1, *s.shape[1:]), s.dtype.name), element_spec)
    with model.distribute_strategy.scope():
        model._symbolic_build(data_batch=batch)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None  # built: nothing left to build in fit


def forget():
    """Drop every kept model (the next run compiles afresh)."""
    _LAST.clear()
    _SHARED.clear()
