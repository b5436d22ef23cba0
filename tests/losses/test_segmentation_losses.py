import keras
import numpy as np
import pytest

from keras_zoo.losses import BCEDice, SoftDice, bce_dice_loss, soft_dice_loss

pytestmark = pytest.mark.backend_agnostic


def _numpy_dice_loss(t, p, smooth=1.0):
    inter = (t * p).reshape(len(t), -1).sum(1)
    total = t.reshape(len(t), -1).sum(1) + p.reshape(len(p), -1).sum(1)
    return 1 - (2 * inter + smooth) / (total + smooth)


def _numpy_bce(t, p, eps=1e-7):
    p = np.clip(p, eps, 1 - eps)
    return -(t * np.log(p) + (1 - t) * np.log(1 - p)).reshape(len(t), -1).mean(1)


@pytest.fixture
def batch():
    rng = np.random.default_rng(1)
    t = (rng.random((3, 8, 8, 1)) > 0.5).astype("float32")
    p = rng.uniform(0.01, 0.99, (3, 8, 8, 1)).astype("float32")
    return t, p


def test_soft_dice_vs_numpy(batch):
    t, p = batch
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(soft_dice_loss(t, p)), _numpy_dice_loss(t, p), rtol=1e-5
    )
    assert float(SoftDice()(t, p)) == pytest.approx(_numpy_dice_loss(t, p).mean(), rel=1e-5)


def test_perfect_prediction_has_zero_dice_loss(batch):
    t, _ = batch
    assert float(SoftDice(smooth=0.0)(t, t)) == pytest.approx(0.0, abs=1e-6)


def test_bce_dice_vs_numpy(batch):
    t, p = batch
    expected = _numpy_bce(t, p) + 0.5 * _numpy_dice_loss(t, p)
    got = keras.ops.convert_to_numpy(bce_dice_loss(t, p, dice_weight=0.5))
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    loss = BCEDice(dice_weight=0.5)
    assert float(loss(t, p)) == pytest.approx(expected.mean(), rel=1e-4)
    assert BCEDice.from_config(loss.get_config()).dice_weight == 0.5
