"""stylecastd's config: the documented example, strict validation, flags over file over defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from stylecast.core.errors import ConfigError
from stylecast.daemon.config import (
    BUNDLED_MODELS,
    DEFAULT_BUNDLED_STYLE,
    DaemonConfig,
    bundled_styles,
    flag_overrides,
    load_config,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "configs" / "stylecast.toml"


def all_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += all_keys(annotation, f"{prefix}{name}.")
        else:
            keys.append(prefix + name)
    return keys


def test_the_example_config_documents_every_option_and_loads_as_the_defaults():
    text = EXAMPLE.read_text()
    for key in all_keys(DaemonConfig):
        section, _, name = key.rpartition(".")
        assert f"[{section}]" in text, f"section [{section}] is not in {EXAMPLE.name}"
        documented = (rf"^\[{re.escape(key)}\]$" if key == "styles.models"  # a table of its own
                      else rf"^#? ?{re.escape(name)} = ")
        assert re.search(documented, text, re.M), f"{key} is not documented"
    example = load_config(EXAMPLE)
    defaults = load_config(None)
    assert example.model_dump() == defaults.model_dump()


def test_unknown_keys_and_bad_values_are_one_line_naming_file_key_and_value(tmp_path):
    path = tmp_path / "stylecast.toml"
    path.write_text("[publish]\nformat = 'png'\nsndhwm = 0\n[sorce]\nuri = 'test://'\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    assert "publish.format" in message and "'png'" in message
    assert "publish.sndhwm" in message and "sorce" in message


@pytest.mark.parametrize("toml, named", [
    ("[source]\nuri = 'ftp://x'\n", "ftp"),
    ("[source]\nuri = 'test://?fps=fast'\n", "fps"),
    ("[publish]\nendpoints = ['localhost:5555']\n", "localhost:5555"),
    ("[control]\nendpoint = 'udp://x'\n", "udp://x"),
    ("[engine]\nruntime = 'tflite'\n", "engine.runtime"),
    ("[engine]\nproviders = ['rocm']\n", "rocm"),
    ("[styles]\nactive = 'b'\n[styles.models]\na = 'a.onnx'\n",
     "key 'styles.active' = 'b' is not a style; the configured styles are a"),
    ("[styles.models]\n'bad name!' = 'a.onnx'\n", "bad name!"),
    ("[faults]\nmax_engine_errors = -1\n", "faults.max_engine_errors"),
    ("[log]\nlevel = 'loud'\n", "log.level"),
    ("[metrics]\nlisten = '9108'\n", "key 'metrics.listen' = '9108': expected HOST:PORT"),
    ("[metrics]\nlisten = '127.0.0.1:65536'\n", "a port from 0 to 65535"),
    ("[metrics]\nlisten = '::1:9108'\n", "an IPv6 address goes in brackets"),
    ("[metrics]\nlisten = '[nope]:9108'\n", "'nope' is not an IPv6 address"),
    ("[metrics]\nlisten = 9108\n", "key 'metrics.listen' = 9108"),
    ("[metrics]\nport = 9108\n", "key 'metrics.port' is not a known key"),
    ("[publish\n", "cannot read config"),
])
def test_config_mistakes(tmp_path, toml, named):
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=re.escape(named)):
        load_config(path)


def test_an_unknown_active_style_is_one_line_naming_key_value_and_the_styles(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[styles]\nactive = 'kandinski'\n")  # no models: the bundled ones
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}: key 'styles.active' = 'kandinski' is not a style (did you mean "
        f"'kandinsky'?); the bundled styles are {', '.join(bundled_styles())}")


@pytest.mark.parametrize("toml, named", [
    ("[control]\nendpoint = 'ipc:///tmp/x'\n[publish]\nendpoints = ['ipc:///tmp/x']\n",
     "key 'control.endpoint' = 'ipc:///tmp/x' is also in publish.endpoints"),
    ("[publish]\nendpoints = ['tcp://127.0.0.1:1', 'tcp://127.0.0.1:1']\n",
     "'tcp://127.0.0.1:1' listed twice"),
    ("[engine]\nruntime = 'onnxruntime'\n[styles.models]\na = 'a.onnx'\nb = 'b.engine'\n",
     "key 'engine.runtime' = 'onnxruntime' cannot run the TensorRT engine of style 'b'"),
    ("[engine]\nruntime = 'openvino'\n[styles.models]\na = 'a.engine'\n",
     "key 'engine.runtime' = 'openvino' cannot run the TensorRT engine of style 'a'"),
    ("[source]\nreopen_backoff_s = 20\n",
     "key 'source.reopen_backoff_s' = 20 is above source.reopen_backoff_max_s = 10"),
])
def test_keys_that_refer_to_other_keys_must_agree(tmp_path, toml, named):
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=re.escape(f"{path}: ")) as caught:
        load_config(path)
    assert named in str(caught.value) and "\n" not in str(caught.value)


def test_the_same_checks_apply_to_flags():
    with pytest.raises(ConfigError, match=r"also in publish\.endpoints"):
        load_config(None, flag_overrides(publish=["ipc:///tmp/x"], control="ipc:///tmp/x"))
    assert load_config(None, {"styles.active": "night-cafe"}).active_style() == "night-cafe"


def test_metrics_are_off_unless_listen_is_set_and_the_flag_overrides_the_file(tmp_path):
    assert load_config(None).metrics.address() is None
    path = tmp_path / "c.toml"
    path.write_text("[metrics]\nlisten = '0.0.0.0:9108'\n")
    assert load_config(path).metrics.address() == ("0.0.0.0", 9108)
    assert load_config(path, flag_overrides(metrics="[::1]:0")).metrics.address() == ("::1", 0)
    assert load_config(path, flag_overrides(metrics="localhost:9108")).metrics.address() == (
        "localhost", 9108)
    assert load_config(path, flag_overrides(metrics="")).metrics.address() is None


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'nope.toml'}: config file")):
        load_config(tmp_path / "nope.toml")


def test_model_paths_are_relative_to_the_config_file(tmp_path):
    path = tmp_path / "etc" / "stylecast.toml"
    path.parent.mkdir()
    path.write_text("[styles.models]\nmosaic = 'models/mosaic.onnx'\nabs = '/m/abs.onnx'\n")
    config = load_config(path)
    assert config.style_models() == {"mosaic": tmp_path / "etc" / "models" / "mosaic.onnx",
                                     "abs": Path("/m/abs.onnx")}
    assert config.active_style() == "mosaic"


def test_flags_override_the_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[source]\nuri = 'test://'\n[publish]\nendpoints = ['tcp://0.0.0.0:1']\n"
                    "[styles]\nactive = 'a'\n[styles.models]\na = 'a.onnx'\nb = 'b.onnx'\n")
    overrides = flag_overrides(source="file://clip.mp4?loop=1", model="my model.onnx",
                               publish=["ipc:///tmp/x", "tcp://127.0.0.1:9"],
                               control="tcp://127.0.0.1:7", log_level="debug")
    config = load_config(path, overrides)
    assert config.source.uri == "file://clip.mp4?loop=1"
    assert config.style_models() == {"my-model": Path("my model.onnx").absolute()}
    assert config.active_style() == "my-model"
    assert config.publish.endpoints == ["ipc:///tmp/x", "tcp://127.0.0.1:9"]
    assert config.control.endpoint == "tcp://127.0.0.1:7"
    assert config.log.level == "debug"


def test_no_styles_configured_uses_the_bundled_ones():
    config = load_config(None)
    assert config.style_models() == bundled_styles()
    assert set(bundled_styles()) == {"cafe-terrace", "great-wave", "hiroshige-snow",
                                     "moulin-galette", "night-cafe", "kandinsky"}
    assert config.active_style() == DEFAULT_BUNDLED_STYLE
    for name, path in bundled_styles().items():
        assert path.parent == BUNDLED_MODELS and path.stem == name
        assert (BUNDLED_MODELS / "fp32" / path.name).is_file()  # its FP32 twin


def test_a_missing_bundled_folder_is_one_clear_line(monkeypatch, tmp_path):
    import stylecast.daemon.config as config_module

    monkeypatch.setattr(config_module, "BUNDLED_MODELS", tmp_path / "models")
    with pytest.raises(ConfigError, match="no bundled style was found"):
        load_config(None).style_models()


# --- [styles.NAME]: strength and smoothing per style ------------------------------------------


def test_a_style_table_sets_its_strength_and_smoothing(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[styles.models]\na = 'a.onnx'\nb = 'b.onnx'\n"
                    "[styles.b]\nstrength = 0.6\nsmoothing = 0.25\n")
    tunings = load_config(path).style_tunings()
    assert tunings["a"].model_dump() == {"strength": 1.0, "smoothing": 0.0}  # the defaults
    assert tunings["b"].model_dump() == {"strength": 0.6, "smoothing": 0.25}


MOSAIC = "[styles.models]\nmosaic = 'a.onnx'\n"


@pytest.mark.parametrize("toml, message", [
    ("[styles.mosaic]\nstrength = 1.5\n",
     "key 'styles.mosaic.strength' = 1.5: Input should be less than or equal to 1"),
    ("[styles.mosaic]\nsmoothing = -0.5\n",
     "key 'styles.mosaic.smoothing' = -0.5: Input should be greater than or equal to 0"),
    ("[styles.mosaic]\nstrength = 'half'\n",
     "key 'styles.mosaic.strength' = 'half': Input should be a valid number"),
    ("[styles.mosaic]\nstrength = nan\n",
     "key 'styles.mosaic.strength' = nan: Input should be a finite number"),
    ("[styles.mosaic]\nstrenght = 0.5\n", "key 'styles.mosaic.strenght' is not a known key"),
    ("[styles]\npreloud = true\n",
     "key 'styles.preloud' = True: is not a known key (the [styles] keys are active, preload, "
     "models, and a [styles.NAME] table tunes the style NAME)"),
    ("[styles.mosiac]\nstrength = 0.5\n",
     "table [styles.mosiac] tunes no style (did you mean [styles.mosaic]?); the configured "
     "styles are mosaic"),
])
def test_style_table_mistakes_are_one_line(tmp_path, toml, message):
    path = tmp_path / "c.toml"
    path.write_text(MOSAIC + toml)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: {message}"


def test_a_table_of_a_bundled_style_is_no_mistake(tmp_path):
    path = tmp_path / "c.toml"
    name = DEFAULT_BUNDLED_STYLE
    path.write_text(f"[styles.{name}]\nstrength = 0.5\n")
    assert load_config(path).style_tunings()[name].strength == 0.5


def test_model_flag_leaves_the_other_styles_tables_behind(tmp_path):
    """--model replaces the configured styles: the tables of those styles are not a mistake."""
    path = tmp_path / "c.toml"
    path.write_text("[styles.models]\nmosaic = 'a.onnx'\n[styles.mosaic]\nstrength = 0.5\n"
                    "[styles.mine]\nsmoothing = 0.5\n")
    config = load_config(path, flag_overrides(model=str(tmp_path / "mine.onnx")))
    assert {name: t.model_dump() for name, t in config.style_tunings().items()} == {
        "mine": {"strength": 1.0, "smoothing": 0.5}}
