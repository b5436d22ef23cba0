"""benchmarks/deeplab_overfit_data.py: the VOC samples downscaled for the overfitting recipe."""

import importlib.util
import pathlib

import numpy as np
import pytest
from PIL import Image

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "deeplab_overfit_data.py"
spec = importlib.util.spec_from_file_location("deeplab_overfit_data", SCRIPT)
overfit_data = importlib.util.module_from_spec(spec)
spec.loader.exec_module(overfit_data)

pytestmark = pytest.mark.backend_agnostic


def test_writes_every_sample_at_the_size_and_refuses_a_folder_with_files(tmp_path, shared_data, capsys):
    out = tmp_path / "voc"
    argv = ["33", "--source", str(shared_data / "voc2012_samples"), "--output", str(out)]
    assert overfit_data.main(argv) == 0
    names = (out / "VOC2012/ImageSets/Segmentation/val.txt").read_text().split()
    assert len(names) == 14
    for name in names:
        assert Image.open(out / f"VOC2012/JPEGImages/{name}.jpg").size == (33, 33)
        label = np.asarray(Image.open(out / f"VOC2012/SegmentationClass/{name}.png"))
        assert label.shape == (33, 33) and set(np.unique(label)) <= set(range(21)) | {255}
    before = (out / f"VOC2012/JPEGImages/{names[0]}.jpg").read_bytes()
    assert overfit_data.main([*argv[:1], "--source", argv[2], "--output", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (out / f"VOC2012/JPEGImages/{names[0]}.jpg").read_bytes() == before
