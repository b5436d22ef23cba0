"""Shared inference pieces: input lists, outputs never overwritten by accident, models resized, top-k CSV."""

import os

import numpy as np
import pytest

from keras_zoo.errors import ConfigError, DataError
from keras_zoo.inference import amoebanet as ai
from keras_zoo.inference import common


def test_file_stems_and_input_lists(tmp_path):
    assert common.file_stem("a/ct.nii.gz") == "ct" and common.file_stem("x.y.png") == "x.y"
    (tmp_path / "sub").mkdir()
    for name in ("b.png", "a.PNG", ".hidden.png", "notes.txt", "sub/c.png"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.rsplit("/", 1)[1] for p in common.list_inputs(tmp_path, (".png",), "images")] == [
        "a.PNG",
        "b.png",
    ]
    assert len(common.list_inputs(tmp_path, (".png",), "images", recursive=True)) == 3
    with pytest.raises(DataError, match="unsupported input for this network"):
        common.list_inputs(tmp_path / "notes.txt", (".png",), "images")
    with pytest.raises(DataError, match="no volumes"):
        common.list_inputs(tmp_path / "sub", (".nii",), "volumes")


def test_claim_refuses_existing_files_and_output_that_is_a_file(tmp_path):
    (tmp_path / "old.png").write_bytes(b"x")
    with pytest.raises(ConfigError, match="old.png: exists; pass --overwrite"):
        common.OutputClaims(overwrite=False).claim_all([str(tmp_path / "new.png"), str(tmp_path / "old.png")])
    assert common.OutputClaims(overwrite=True).claim(str(tmp_path / "old.png")).endswith("old.png")
    with pytest.raises(ConfigError, match="is a file"), common.output_folder(tmp_path / "old.png"):
        pass


def test_an_output_folder_made_for_a_failing_command_is_removed_again(tmp_path):
    with pytest.raises(ConfigError), common.output_folder(tmp_path / "new") as folder:
        assert os.path.isdir(folder)
        raise ConfigError("bad input")
    assert not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()
    with pytest.raises(ConfigError), common.output_folder(tmp_path / "mine"):
        raise ConfigError("bad input")
    assert (tmp_path / "mine").is_dir()  # the user's own folder stays
    with common.output_folder(tmp_path / "kept") as folder:
        (tmp_path / "kept" / "result.png").write_bytes(b"x")
    assert os.listdir(folder) == ["result.png"]


def test_output_claims_refuse_inputs_repeats_and_existing_files(tmp_path):
    (tmp_path / "in.png").write_bytes(b"x")
    (tmp_path / "old.png").write_bytes(b"x")
    (tmp_path / "link.png").symlink_to(tmp_path / "in.png")
    outputs = common.OutputClaims(overwrite=True, inputs=[str(tmp_path / "in.png")])
    for path in ("in.png", "link.png"):  # the input itself, or through a link
        with pytest.raises(ConfigError, match="is an input of this command"):
            outputs.claim(tmp_path / path)
    assert outputs.claim(tmp_path / "old.png").endswith("old.png")  # --overwrite: an earlier result goes
    with pytest.raises(ConfigError, match="two inputs give results of this name"):
        outputs.claim(tmp_path / "old.png")
    with pytest.raises(ConfigError, match="new.png: exists"):
        (tmp_path / "new.png").write_bytes(b"x")
        common.OutputClaims(overwrite=False).claim_all([tmp_path / "other.png", tmp_path / "new.png"])


def test_inputs_of_one_stem_are_refused():
    common.require_distinct_stems(["a/s0.png", "a/s1.png", "b/ct.nii.gz", "b/mr.mha"])
    with pytest.raises(ConfigError, match=r"a/s0.png and a/s0.tif: both give results named s0\*"):
        common.require_distinct_stems(["a/s0.png", "a/s0.tif"])
    with pytest.raises(ConfigError, match="ct.nii.gz and b/ct.mha"):
        common.require_distinct_stems(["a/ct.nii.gz", "b/ct.mha"])


def test_with_input_size_keeps_the_weights_and_outputs():
    from keras_zoo.registry import get_model

    model = get_model("unet", preset="tiny")
    resized = common.with_input_size(model, (48, 64))
    assert resized.inputs[0].shape[1:3] == (48, 64)
    x = np.random.default_rng(0).random((1, 32, 32, 1)).astype(np.float32)
    same = common.with_input_size(model, (32, 32))
    assert same is model
    any_size = common.with_input_size(model, (None, None))
    np.testing.assert_allclose(any_size.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert [layer.name for layer in resized.layers] == [layer.name for layer in model.layers]
    assert all(a is b for a, b in zip(resized.weights, model.weights, strict=True))  # shared, not copied
    with pytest.raises(ConfigError, match="2-D inputs, not 3-D"):
        common.with_input_size(model, (8, 8, 8))


def test_top_k_and_imagenet_labels():
    probs = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]], np.float32)
    ids, top = ai.top_k(probs, 2)
    np.testing.assert_array_equal(ids, [[1, 2], [0, 2]])
    np.testing.assert_allclose(top, [[0.6, 0.3], [0.5, 0.3]])
    np.testing.assert_array_equal(ai.topk_accuracy(probs, np.array([2, 1]), 2), [True, False])
    assert ai.class_label(0, 1001) == ("", "background")
    assert ai.class_label(1, 1001) == ai.class_label(0, 1000) == ("n01440764", "tench")
    assert ai.class_label(3, 10) == ("", "class3")
    assert ai.csv_header(1) == ["file", "class_1", "wnid_1", "name_1", "probability_1"]
