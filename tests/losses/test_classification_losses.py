import keras
import numpy as np
import pytest

from keras_zoo.losses.classification import SmoothedSparseCrossentropy, smoothed_sparse_crossentropy
from keras_zoo.optimizers import WarmupExponentialDecay

pytestmark = pytest.mark.backend_agnostic


def numpy_smoothed_ce(labels, logits, s):
    classes = logits.shape[-1]
    target = np.eye(classes)[labels] * (1 - s) + s / classes
    shifted = logits - logits.max(-1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    return -(target * log_softmax).sum(-1)


def test_label_smoothing_matches_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 11)).astype("float32") * 3
    labels = rng.integers(0, 11, 6)
    got = keras.ops.convert_to_numpy(smoothed_sparse_crossentropy(labels, logits, 0.1))
    np.testing.assert_allclose(got, numpy_smoothed_ce(labels, logits, 0.1), rtol=1e-5)
    loss = SmoothedSparseCrossentropy(0.1, weight=0.4)
    value = float(keras.ops.convert_to_numpy(loss(labels[:, None], logits)))
    assert value == pytest.approx(0.4 * numpy_smoothed_ce(labels, logits, 0.1).mean(), rel=1e-5)
    clone = SmoothedSparseCrossentropy.from_config(loss.get_config())
    assert (clone.label_smoothing, clone.weight) == (0.1, 0.4)
    with pytest.raises(ValueError, match="label_smoothing"):
        SmoothedSparseCrossentropy(1.0)


def test_warmup_exponential_decay_values():
    # Ascend defaults: lr 2.56, decay 0.88 per epoch, warm-up 0.35 epochs; 100 steps per epoch
    schedule = WarmupExponentialDecay(2.56, decay_steps=100, decay_rate=0.88, warmup_steps=35)
    expected = {
        0: 0.0 + 2.56e-4,
        7: 2.56 * 7 / 35,
        34: 2.56 * 34 / 35,
        35: 2.56,
        99: 2.56,
        100: 2.56 * 0.88,
        250: 2.56 * 0.88**2,
        3499: 2.56 * 0.88**34,
    }
    for step, lr in expected.items():
        assert float(keras.ops.convert_to_numpy(schedule(step))) == pytest.approx(lr, rel=1e-5), step
    # the floor: 1e-4 of the initial rate
    assert float(keras.ops.convert_to_numpy(schedule(10**6))) == pytest.approx(2.56e-4)
    clone = WarmupExponentialDecay.from_config(schedule.get_config())
    assert float(keras.ops.convert_to_numpy(clone(150))) == pytest.approx(2.56 * 0.88)
