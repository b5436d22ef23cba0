"""Readers of the real data formats, synthetic default sets, augmentation and batching.

Readers return NumPy arrays and work on every backend; :mod:`keras_zoo.datasets.base` adapts them to
``keras.utils.PyDataset`` batches. TensorFlow-only readers (tfrecord) import TensorFlow lazily.
"""
