"""keras_zoo.weights: one loading story (legacy files under a Keras 3 name, dispatch to a network's loader)."""

import keras
import numpy as np
import pytest

from keras_zoo.errors import WeightsError
from keras_zoo.registry import get_model
from keras_zoo.weights import LoadReport, load_pretrained, load_weights, save_h5_weights

pytestmark = pytest.mark.backend_agnostic


def _tiny_unet(seed: int):
    keras.utils.set_random_seed(seed)
    return get_model("unet", preset="tiny")


def test_a_legacy_h5_renamed_weights_h5_loads_by_name_with_a_report(tmp_path, capsys):
    source, target = _tiny_unet(1), _tiny_unet(2)
    path = tmp_path / "renamed.weights.h5"
    save_h5_weights(source, path)
    report = load_weights(target, str(path))
    assert isinstance(report, LoadReport) and report.matched and not report.missing
    for a, b in zip(source.get_weights(), target.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert len(capsys.readouterr().err.splitlines()) < 5


def test_a_keras3_weights_file_named_h5_loads_as_one(tmp_path):
    """The reverse of the renamed legacy file: Keras 3's layout under a legacy name."""
    source, target = _tiny_unet(3), _tiny_unet(4)
    source.save_weights(str(tmp_path / "w.weights.h5"))
    (tmp_path / "w.weights.h5").rename(tmp_path / "w.h5")
    report = load_weights(target, str(tmp_path / "w.h5"))
    assert report.matched and not report.missing and not report.mismatched
    for a, b in zip(source.get_weights(), target.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_skip_mismatch_holds_for_keras_archives_too(tmp_path):
    path = str(tmp_path / "narrow.keras")
    _tiny_unet(5).save(path)
    wide = get_model("unet", preset="tiny", filters=8)
    with pytest.raises(WeightsError, match="shape mismatches"):
        load_weights(wide, path)
    report = load_weights(wide, path, skip_mismatch=True)  # raised before, whatever the flag
    assert report.mismatched and report.matched


def test_bad_files_and_arguments_are_named_plainly(tmp_path):
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"junk!")
    with pytest.raises(WeightsError, match=r"junk.keras: not a .keras archive \(not a zip file\)"):
        load_weights(_tiny_unet(6), str(junk))
    with pytest.raises(WeightsError, match="is a folder; give the weights file's name"):
        save_h5_weights(_tiny_unet(6), tmp_path)
    with pytest.raises(TypeError, match="save_h5_weights takes a keras.Model, got str"):
        save_h5_weights("unet", tmp_path / "w.h5")


def test_load_pretrained_dispatches_to_the_networks_own_loader(tmp_path, monkeypatch):
    from keras_zoo import registry

    calls = []
    registry.list_models()
    monkeypatch.setitem(
        registry._WEIGHTS_LOADERS, "unet", lambda model, path, **options: calls.append(options)
    )
    load_pretrained("unet", _tiny_unet(0), "any.npz", flip=True)
    assert calls == [{"flip": True}]
    monkeypatch.delitem(registry._WEIGHTS_LOADERS, "unet")
    source, target = _tiny_unet(3), _tiny_unet(4)
    source.save_weights(str(tmp_path / "u.weights.h5"))
    report = load_pretrained("unet", target, str(tmp_path / "u.weights.h5"))
    assert isinstance(report, LoadReport) and not report.missing
    for a, b in zip(source.get_weights(), target.get_weights()):
        np.testing.assert_array_equal(a, b)


def _layers_with_weights(model) -> list[str]:
    return [layer.name for layer in model.layers if layer.weights]


def test_a_weights_h5_of_the_same_model_loads_back_with_every_layer_matched(tmp_path):
    source, target = _tiny_unet(5), _tiny_unet(6)
    path = str(tmp_path / "u.weights.h5")
    source.save_weights(path)
    report = load_weights(target, path)
    assert isinstance(report, LoadReport)
    assert report.matched == _layers_with_weights(target)
    assert not (report.missing or report.unused or report.mismatched or report.new_head)
    x = np.random.default_rng(0).random((1, *source.input_shape[1:]), dtype=np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(target(x)), keras.ops.convert_to_numpy(source(x)))


def _tiny_genesis(seed: int, variant: str | None = None):
    keras.utils.set_random_seed(seed)
    return get_model("genesis", preset="tiny", variant=variant)


@pytest.mark.parametrize("names", [True, False], ids=["layer-names", "no-layer-names"])
def test_genesis_pretraining_weights_h5_leaves_the_segmenters_new_head_initialised(tmp_path, caplog, names):
    import h5py

    pretrained, segmenter = _tiny_genesis(7), _tiny_genesis(8, "segmenter")
    assert segmenter.head_layers == ("seg_conv",)
    path = str(tmp_path / "genesis.weights.h5")
    pretrained.save_weights(path)
    if not names:  # files of Keras versions that did not record layer names: matched by class and order
        with h5py.File(path, "a") as f:
            f.visititems(lambda n, o: o.attrs.__delitem__("name") if "name" in o.attrs else None)
    head = keras.ops.convert_to_numpy(pretrained.get_layer("head_conv").kernel)
    initial = keras.ops.convert_to_numpy(segmenter.get_layer("seg_conv").kernel)
    assert head.shape == initial.shape  # the trap: same shape, same place in class order
    with caplog.at_level("INFO", logger="keras_zoo"):
        report = load_pretrained("genesis", segmenter, path)
    assert isinstance(report, LoadReport)
    assert report.new_head == ["seg_conv"] and report.missing == ["seg_conv"] and not report.mismatched
    assert report.unused == (["head_conv"] if names else ["conv3d_10"])
    assert "new head" in caplog.text and "seg_conv" in caplog.text
    for name in _layers_with_weights(segmenter):
        if name != "seg_conv":
            for a, b in zip(
                pretrained.get_layer(name).get_weights(), segmenter.get_layer(name).get_weights()
            ):
                np.testing.assert_array_equal(a, b)
    kernel = keras.ops.convert_to_numpy(segmenter.get_layer("seg_conv").kernel)
    np.testing.assert_array_equal(kernel, initial)
    assert not np.array_equal(kernel, head)


def test_a_fine_tuned_segmenters_own_weights_h5_loads_its_head(tmp_path):
    tuned, fresh = _tiny_genesis(9, "segmenter"), _tiny_genesis(10, "segmenter")
    path = str(tmp_path / "segmenter.weights.h5")
    tuned.save_weights(path)
    report = load_weights(fresh, path)
    assert "seg_conv" in report.matched and not report.new_head
    for a, b in zip(tuned.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_genesis_pretraining_weights_h5_into_the_classifier_loads_the_encoder(tmp_path):
    pretrained, classifier = _tiny_genesis(11), _tiny_genesis(12, "classifier")
    path = str(tmp_path / "genesis.weights.h5")
    pretrained.save_weights(path)
    report = load_weights(classifier, path)
    assert report.new_head == ["cls_dense", "cls_logits"] and not report.mismatched
    assert "depth_0_conv" in report.matched and "depth_9_conv" in report.unused
    np.testing.assert_array_equal(
        pretrained.get_layer("depth_3_conv").get_weights()[0],
        classifier.get_layer("depth_3_conv").get_weights()[0],
    )


def test_a_weights_h5_of_another_architecture_is_one_line_naming_the_file(tmp_path):
    path = str(tmp_path / "unet.weights.h5")
    _tiny_unet(13).save_weights(path)
    target = _tiny_genesis(14)
    before = target.get_weights()
    with pytest.raises(WeightsError) as info:
        load_weights(target, path)
    message = str(info.value)
    assert path in message and "\n" not in message
    for a, b in zip(before, target.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("suffix", [".weights.h5", ".h5", ".keras"])
def test_train_build_model_logs_the_report_once_for_every_format(tmp_path, caplog, suffix):
    import types

    from keras_zoo.cli.train import build_model

    pretrained = _tiny_genesis(15)
    path = str(tmp_path / f"genesis{suffix}")
    if suffix == ".h5":
        save_h5_weights(pretrained, path)
    elif suffix == ".keras":
        pretrained.save(path)
    else:
        pretrained.save_weights(path)
    task = types.SimpleNamespace(
        name="genesis",
        model_config=lambda args, data: {"variant": "segmenter", "config": _preset("genesis", "tiny")},
        weights_options=lambda args: {},
    )
    with caplog.at_level("INFO", logger="keras_zoo"):
        model, spec = build_model(task, types.SimpleNamespace(weights=path), None)
    assert spec["variant"] == "segmenter" and model.head_layers == ("seg_conv",)
    assert caplog.text.count(f"{path}: 20 layers matched") == 1


def test_train_build_model_logs_a_line_where_the_loader_gives_no_report(tmp_path, caplog, monkeypatch):
    import types

    from keras_zoo import registry
    from keras_zoo.cli.train import build_model

    registry.list_models()
    monkeypatch.setitem(registry._WEIGHTS_LOADERS, "unet", lambda model, path, **options: None)
    task = types.SimpleNamespace(
        name="unet",
        model_config=lambda args, data: {"variant": None, "config": _preset("unet", "tiny")},
        weights_options=lambda args: {},
    )
    with caplog.at_level("INFO", logger="keras_zoo"):
        build_model(task, types.SimpleNamespace(weights="ref.npz"), None)
    assert caplog.text.count("ref.npz: loaded into") == 1


def _preset(name: str, preset: str) -> dict:
    from keras_zoo.registry import get_entry

    return dict(get_entry(name).presets[preset])
