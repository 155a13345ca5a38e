"""Knowledge distillation from a small CNN teacher (Hinton et al. 2015; DeiT's soft distillation, Touvron et al.
2021), and that CNN, also the baseline with locality built in.

Keras has a ``Distiller`` in its examples, but it calls the teacher on the un-augmented images; here the teacher
labels exactly the augmented image the student is shown, as in DeiT.
"""
import keras
from keras import ops


def small_cnn(image_shape, num_classes, name="small_cnn"):
    """A small CNN (two blocks of two 3x3 convolutions and a 2x2 max-pool, global average pooling, linear
    head): the baseline with locality built in, and the teacher for distillation."""
    inputs = keras.Input(image_shape)
    x = inputs
    for filters in (32, 64):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x), name=name)


@keras.saving.register_keras_serializable(package="vitlib")
class DistillationLoss(keras.losses.Loss):
    """Soft knowledge distillation (Hinton et al. 2015; DeiT's "soft distillation", Touvron et al. 2021).

    ``y_pred`` is the student's and the teacher's logits side by side, ``(B, 2 * num_classes)``, as
    :func:`distillation_model` outputs them. The loss is
    ``(1 - alpha) * CE(labels, student) + alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))``:
    the teacher's whole output distribution, softened by the temperature ``T``, is a second target.
    No gradient reaches the teacher.
    """

    def __init__(self, num_classes, alpha=0.5, temperature=2.0, label_smoothing=0.0, name="distillation", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes, self.alpha, self.temperature, self.label_smoothing = (
            int(num_classes), float(alpha), float(temperature), float(label_smoothing))

    def call(self, y_true, y_pred):
        student, teacher = y_pred[:, : self.num_classes], ops.stop_gradient(y_pred[:, self.num_classes:])
        hard = keras.losses.categorical_crossentropy(y_true, student, from_logits=True,
                                                     label_smoothing=self.label_smoothing)
        t = self.temperature
        soft = t * t * keras.losses.kl_divergence(ops.softmax(teacher / t), ops.softmax(student / t))
        return (1.0 - self.alpha) * hard + self.alpha * soft

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "alpha": self.alpha,
                "temperature": self.temperature, "label_smoothing": self.label_smoothing}


def student_accuracy(num_classes):
    """Accuracy of the student half of a :func:`distillation_model`'s output, logged as ``accuracy``."""
    def accuracy(y_true, y_pred):
        return ops.cast(ops.argmax(y_true, -1) == ops.argmax(y_pred[:, :num_classes], -1), "float32")

    return keras.metrics.MeanMetricWrapper(accuracy, name="accuracy")


def distillation_model(student, teacher, augment=None):
    """A training model: images -> (augment) -> [student logits, frozen teacher logits] concatenated.

    Both see the same augmented image, so the teacher labels exactly what the student is shown. Train
    it with :class:`DistillationLoss`; the student alone is the model to keep.
    """
    teacher.trainable = False
    images = keras.Input(student.input_shape[1:], name="images")
    x = augment(images) if augment is not None else images
    both = keras.layers.Concatenate(name="student_and_teacher")([student(x), teacher(x, training=False)])
    return keras.Model(images, both, name="distillation_model")
