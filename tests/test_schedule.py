"""vitlib.training.schedule: the warm-up + cosine learning rate is its formula, and Keras' own schedule."""
import keras
import numpy as np
from keras import ops

from vitlib.training import schedule


def test_warmup_cosine_schedule_is_linear_then_the_cosine_of_its_formula():
    peak, final, total, warm = 1e-3, 1e-5, 100, 10
    s = schedule.WarmupCosine(peak, total_steps=total, warmup_steps=warm, final=final)
    lr = np.array([float(ops.convert_to_numpy(s(step))) for step in range(total + 1)])
    steps = np.arange(total + 1)
    progress = np.clip((steps - warm) / (total - warm), 0, 1)
    formula = np.where(steps < warm, peak * steps / warm, final + 0.5 * (peak - final) * (1 + np.cos(np.pi * progress)))
    np.testing.assert_allclose(lr, formula, atol=2e-10)
    keras_schedule = keras.optimizers.schedules.CosineDecay(0.0, total - warm, alpha=final / peak, warmup_target=peak,
                                                            warmup_steps=warm)
    keras_lr = np.array([float(ops.convert_to_numpy(keras_schedule(step))) for step in range(total + 1)])
    np.testing.assert_allclose(lr, keras_lr, atol=2e-10)  # the same schedule as Keras' own
    assert lr[0] == 0 and (np.diff(lr[:11]) > 0).all() and (np.diff(lr[10:]) <= 1e-12).all()
    clone = type(s).from_config(s.get_config())
    assert float(ops.convert_to_numpy(clone(30))) == float(ops.convert_to_numpy(s(30)))
