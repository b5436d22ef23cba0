import numpy as np
import pytest

from keras_zoo.metrics import ClassIoU, DiceCoefficient, ThresholdPixelAccuracy

pytestmark = pytest.mark.backend_agnostic


def _counts(t, p, c):
    return np.sum((t == c) & (p == c)), np.sum((t != c) & (p == c)), np.sum((t == c) & (p != c))


def test_binary_metrics_vs_numpy_over_two_batches():
    rng = np.random.default_rng(0)
    targets = [(rng.random((2, 6, 6, 1)) > 0.4).astype("float32") for _ in range(2)]
    probs = [rng.random((2, 6, 6, 1)).astype("float32") for _ in range(2)]
    acc, dice0, iou1 = ThresholdPixelAccuracy(), DiceCoefficient(class_id=0), ClassIoU(class_id=1)
    for t, p in zip(targets, probs):
        for m in (acc, dice0, iou1):
            m.update_state(t, p)
    t = np.concatenate(targets).astype(int)
    p = (np.concatenate(probs) > 0.5).astype(int)
    assert float(acc.result()) == pytest.approx((t == p).mean())
    tp, fp, fn = _counts(t, p, 0)
    assert float(dice0.result()) == pytest.approx(2 * tp / (2 * tp + fp + fn), rel=1e-6)
    tp, fp, fn = _counts(t, p, 1)
    assert float(iou1.result()) == pytest.approx(tp / (tp + fp + fn), rel=1e-6)
    acc.reset_state()
    assert float(acc.result()) == 0.0


def test_multiclass_argmax_and_sparse_targets():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(2, 5, 5, 3)).astype("float32")
    labels = rng.integers(0, 3, size=(2, 5, 5))
    pred = logits.argmax(-1)
    for c in range(3):
        m = DiceCoefficient(class_id=c)
        m.update_state(labels, logits)
        tp, fp, fn = _counts(labels, pred, c)
        assert float(m.result()) == pytest.approx(2 * tp / (2 * tp + fp + fn), rel=1e-6)
    m = ThresholdPixelAccuracy()
    m.update_state(np.eye(3)[labels], logits)
    assert float(m.result()) == pytest.approx((labels == pred).mean())


def test_absent_class_counts_as_perfect():
    m = DiceCoefficient(class_id=1)
    m.update_state(np.zeros((1, 4, 4, 1), "float32"), np.zeros((1, 4, 4, 1), "float32"))
    assert float(m.result()) == 1.0
