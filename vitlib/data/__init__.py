"""What a ViT is trained and shown on.

- :mod:`vitlib.data.images`: sample photos, the generated quadrant task, digits placed on a canvas, resizing;
- :mod:`vitlib.data.datasets`: the data set registry (``DATASETS``, ``load_dataset``, ``Dataset``);
- :mod:`vitlib.data.pipeline`: ``tf.data`` input pipelines and in-model augmentation (TensorFlow, at the edge).
"""
