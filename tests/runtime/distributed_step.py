"""Runs one SGD step of a small conv net on a global batch, single-device or data-parallel on 2 CPU devices.

Usage: python distributed_step.py STRATEGY OUT.npz  (STRATEGY: none, mirrored, data-parallel). The backend
comes from KERAS_BACKEND; for data-parallel on JAX, XLA_FLAGS must ask for 2 host devices.
"""

import sys

import numpy as np

from keras_zoo.runtime.distribute import distribution_scope, virtual_cpu_devices

strategy, out = sys.argv[1], sys.argv[2]
if strategy == "mirrored":
    virtual_cpu_devices(2)

import keras  # noqa: E402

scope, replicas = distribution_scope(strategy)
keras.utils.set_random_seed(0)
with scope:
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(1)(x))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
rng = np.random.default_rng(1)
x = rng.normal(size=(8, 8, 8, 2)).astype("float32")
y = rng.normal(size=(8, 1)).astype("float32")
model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
np.savez(out, *model.get_weights(), replicas=replicas)
