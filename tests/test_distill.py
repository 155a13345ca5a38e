"""vitlib.training.distill: the distillation loss is its formula, and only the student learns."""
import numpy as np
import pytest
from keras import ops

import vitlib
from vitlib.training import distill, fitting, recipes


def _tiny_vit():
    return vitlib.build_vit(None, image_size=8, channels=1, num_classes=10, patch_size=4, hidden_size=16, depth=1,
                            num_heads=2, mlp_dim=32)


def test_distillation_loss_matches_its_formula(rng):
    student, teacher = rng.normal(size=(5, 4)).astype("float32"), rng.normal(size=(5, 4)).astype("float32")
    labels = np.eye(4, dtype="float32")[rng.integers(0, 4, 5)]
    softmax = lambda z: np.exp(z - z.max(-1, keepdims=True)) / np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)  # noqa: E731
    ce = -(labels * np.log(softmax(student))).sum(-1)
    p, q = softmax(teacher / 3.0), softmax(student / 3.0)
    kl = (p * np.log(p / q)).sum(-1)
    expected = np.mean(0.25 * ce + 0.75 * 9.0 * kl)
    loss = distill.DistillationLoss(4, alpha=0.75, temperature=3.0)
    got = float(ops.convert_to_numpy(loss(labels, np.concatenate([student, teacher], -1))))
    assert got == pytest.approx(expected, rel=1e-5)
    # alpha 0 is plain cross-entropy; a teacher equal to the student adds nothing at alpha 1
    plain = distill.DistillationLoss(4, alpha=0.0)(labels, np.concatenate([student, teacher], -1))
    assert float(ops.convert_to_numpy(plain)) == pytest.approx(ce.mean(), rel=1e-5)
    same = distill.DistillationLoss(4, alpha=1.0)(labels, np.concatenate([student, student], -1))
    assert float(ops.convert_to_numpy(same)) == pytest.approx(0.0, abs=1e-6)
    clone = distill.DistillationLoss.from_config(loss.get_config())
    assert (clone.num_classes, clone.alpha, clone.temperature) == (4, 0.75, 3.0)


def test_distillation_trains_the_student_and_leaves_the_teacher_alone(rng):
    student = _tiny_vit()
    teacher = distill.small_cnn((8, 8, 1), 10)
    model = distill.distillation_model(student, teacher)
    assert model.output_shape == (None, 20)
    cfg = recipes.recipe("digits", epochs=2, warmup_epochs=1)
    fitting.compile_for_training(model, cfg, 4, loss=distill.DistillationLoss(10, 0.5),
                                  metrics=[distill.student_accuracy(10)])
    x = rng.random((64, 8, 8, 1)).astype("float32")
    y = np.eye(10, dtype="float32")[rng.integers(0, 10, 64)]
    teacher_before = [w.copy() for w in teacher.get_weights()]
    student_before = [w.copy() for w in student.get_weights()]
    logs = model.fit(x, y, batch_size=16, epochs=2, verbose=0).history
    assert "accuracy" in logs and 0 <= logs["accuracy"][-1] <= 1
    assert all(np.array_equal(a, b) for a, b in zip(teacher_before, teacher.get_weights()))
    assert not all(np.array_equal(a, b) for a, b in zip(student_before, student.get_weights()))
    out = ops.convert_to_numpy(model(x[:3]))
    np.testing.assert_allclose(out[:, :10], ops.convert_to_numpy(student(x[:3])), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[:, 10:], ops.convert_to_numpy(teacher(x[:3])), rtol=1e-5, atol=1e-5)
