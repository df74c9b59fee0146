"""gans.inception: parity with pytorch-fid's FID Inception-v3, weight loading, checkpoint reading.

The reference numbers come from pytorch-fid itself run on deterministic random weights
(tests/fixtures/make_inception_fixture.py; only key names, shapes and outputs are stored). Two input
shapes are compiled in this file: (2, 75, 75, 3) without resize and (1, 20, 24, 3) resized to 299.
"""

import os
import pickle
import struct
from pathlib import Path

import jax
import numpy as np
import pytest

from gans.inception import InceptionFeatures, bilinear_matrix, load_inception, main, resize_bilinear
from gans.inception_net import FEATURE_DIM
from gans.inception_weights import expected_state_dict_shapes, params_from_state_dict, random_state_dict
from gans.torch_checkpoint import read_torch_state_dict
from jaxnas.common.errors import ConfigError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SEED = 0  # the fixture's weight seed
TOL = 1e-4  # relative; float32 rounding alone gives ~1e-6 (measured: 9e-7 of the largest feature)


def noresize_images() -> np.ndarray:
    """The fixture's (2, 75, 75, 3) input (same function as in make_inception_fixture.py)."""
    return np.random.default_rng(1).random((2, 75, 75, 3), dtype=np.float32)


def assert_close_to_reference(got: np.ndarray, ref: np.ndarray) -> None:
    """Elementwise |got - ref| <= TOL * (|ref| + max |ref|): ~1e-4 relative to the feature scale."""
    assert got.shape == ref.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=TOL, atol=TOL * float(np.abs(ref).max()))


@pytest.fixture(scope="module")
def ref():
    with np.load(FIXTURES / "inception_reference.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def torch_shapes(ref):
    """The state_dict key -> shape list of pytorch-fid's FIDInceptionV3, in its order."""
    shapes, pos = {}, 0
    for key, ndim in zip(ref["keys"], ref["shapes_ndim"]):
        shapes[str(key)] = tuple(int(d) for d in ref["shapes_flat"][pos : pos + ndim])
        pos += ndim
    assert pos == len(ref["shapes_flat"])
    return shapes


@pytest.fixture(scope="module")
def state(torch_shapes):
    return random_state_dict(torch_shapes, SEED)


@pytest.fixture(scope="module")
def net(state):
    return InceptionFeatures(params=params_from_state_dict(state))


def test_state_dict_names_and_shapes_match_pytorch_fid(torch_shapes):
    assert expected_state_dict_shapes(optional=True) == torch_shapes
    required = expected_state_dict_shapes()
    ignored = {k for k in torch_shapes if k.endswith("num_batches_tracked") or k.startswith("fc.")}
    assert set(required) == set(torch_shapes) - ignored and len(ignored) == 94 + 2
    assert len(required) == 94 * 5  # 94 conv-BN units


def test_random_weights_are_the_fixture_weights(ref, state):
    checksum = sum(np.abs(v.astype(np.float64)).sum() * (i + 1) for i, v in enumerate(state.values()))
    assert checksum == pytest.approx(float(ref["weights_checksum"]), rel=1e-12)


def test_features_match_pytorch_fid_without_resize(ref, net):
    images = noresize_images()
    assert images.astype(np.float64).sum() == pytest.approx(float(ref["noresize_sum"]), rel=1e-12)
    feats = net.features(images, resize=False)  # pytorch-fid InceptionV3(resize_input=False)
    assert feats.shape == (2, FEATURE_DIM)
    assert_close_to_reference(feats, ref["noresize_out"])
    assert np.abs(feats[0] - feats[1]).max() > 1e-2  # distinct images give distinct features


def test_features_match_pytorch_fid_with_default_resize(ref, net):
    feats = net.features(ref["resize_rgb_in"])  # 20x24 -> 299x299, pytorch-fid's defaults
    assert_close_to_reference(feats, ref["resize_rgb_out"])


def test_grayscale_equals_image_repeated_to_rgb(ref, net):
    gray = ref["resize_gray_in"]  # (1, 20, 24, 1)
    from_gray = net.features(gray)
    from_rgb = net.features(np.repeat(gray, 3, axis=-1))
    np.testing.assert_array_equal(from_gray, from_rgb)
    assert_close_to_reference(from_gray, ref["resize_gray_out"])  # torch got the RGB repeat
    assert np.abs(from_gray - net.features(ref["resize_rgb_in"])).max() > 1e-2


def test_batching_pads_the_last_batch_and_keeps_order(ref, net):
    images = noresize_images()
    feats = net.features(images[[1, 0, 1]], batch_size=2, resize=False)  # batches [1, 0], [1, zero pad]
    assert feats.shape == (3, FEATURE_DIM)
    assert_close_to_reference(feats, ref["noresize_out"][[1, 0, 1]])
    np.testing.assert_allclose(feats[2], feats[0], rtol=1e-6, atol=1e-6)
    assert net.features(images[:0], resize=False).shape == (0, FEATURE_DIM)


@pytest.mark.parametrize("case,size", [("interp_up2", (11, 13)), ("interp_down", (4, 6))])
def test_resize_matches_torch_interpolate(ref, case, size):
    x = ref[f"{case}_in"].transpose(0, 2, 3, 1)  # NCHW -> NHWC
    got = np.asarray(resize_bilinear(x, size)).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(got, ref[f"{case}_out"], rtol=1e-6, atol=1e-6)


def test_resize_to_299_matches_torch_interpolate(ref):
    x = ref["interp_up_in"].transpose(0, 2, 3, 1)  # (1, 5, 7, 3)
    got = np.asarray(resize_bilinear(x, (299, 299))).transpose(0, 3, 1, 2)[:, :, ref["interp_up_rows"], :]
    np.testing.assert_allclose(got, ref["interp_up_out"], rtol=1e-6, atol=1e-6)
    m = bilinear_matrix(13, 4)  # downsampling: no antialias, two taps per row like torch
    assert m.shape == (4, 13) and (np.count_nonzero(m, axis=1) <= 2).all()
    np.testing.assert_allclose(m.sum(axis=1), 1.0, rtol=1e-6)


def test_load_inception_npz_round_trip(tmp_path, state, net):
    path = tmp_path / "weights.npz"
    np.savez(path, **state)
    loaded = load_inception(str(path))
    assert loaded.feature_dim == FEATURE_DIM
    same = jax.tree_util.tree_map(lambda a, b: bool(np.array_equal(a, b)), loaded.params, net.params)
    assert jax.tree_util.tree_structure(loaded.params) == jax.tree_util.tree_structure(net.params)
    assert all(jax.tree_util.tree_leaves(same))


def test_optional_keys_may_be_absent(state, net):
    core = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked") and not k.startswith("fc.")}
    params = params_from_state_dict(core)
    kernel = params["Mixed_7c"]["branch_pool"]["kernel"]
    np.testing.assert_array_equal(kernel, net.params["Mixed_7c"]["branch_pool"]["kernel"])


def test_batchnorm_is_folded_into_the_kernel(state, net):
    key = "Mixed_6b.branch7x7_2"  # a (1, 7) conv: checks the OIHW -> HWIO order too
    w = state[f"{key}.conv.weight"].astype(np.float64)  # (O, I, 1, 7)
    s = state[f"{key}.bn.weight"] / np.sqrt(state[f"{key}.bn.running_var"].astype(np.float64) + 1e-3)
    params = net.params["Mixed_6b"]["branch7x7_2"]
    assert params["kernel"].shape == (1, 7, 128, 128)
    np.testing.assert_allclose(params["kernel"], w.transpose(2, 3, 1, 0) * s, rtol=1e-6)
    np.testing.assert_allclose(params["bias"], state[f"{key}.bn.bias"] - state[f"{key}.bn.running_mean"] * s,
                               rtol=1e-6, atol=1e-7)


def test_missing_key_is_named_with_its_shape(state):
    broken = dict(state)
    del broken["Mixed_6c.branch7x7_2.conv.weight"]
    with pytest.raises(ConfigError, match=r"missing.*\(160, 160, 1, 7\)") as err:
        params_from_state_dict(broken)
    assert err.value.field == "Mixed_6c.branch7x7_2.conv.weight"


def test_wrong_shape_is_named_with_the_expected_shape(state):
    broken = dict(state, **{"Mixed_7c.branch_pool.bn.running_var": np.ones(191, np.float32)})
    with pytest.raises(ConfigError, match=r"got shape \(191,\); expected \(192,\)") as err:
        params_from_state_dict(broken)
    assert err.value.field == "Mixed_7c.branch_pool.bn.running_var"


def test_extra_key_is_named(state):
    with pytest.raises(ConfigError, match="unexpected key") as err:
        params_from_state_dict(dict(state, **{"AuxLogits.fc.weight": np.zeros((1008, 768), np.float32)}))
    assert err.value.field == "AuxLogits.fc.weight"


def test_load_inception_file_errors(tmp_path, state):
    with pytest.raises(ConfigError, match="does not exist") as err:
        load_inception(str(tmp_path / "absent.npz"))
    assert err.value.field == "path"
    partial = {k: v for k, v in state.items() if not k.startswith("Mixed_7")}
    np.savez(tmp_path / "partial.npz", **partial)
    with pytest.raises(ConfigError, match=r"missing.*\(192, 768, 1, 1\)") as err:
        load_inception(str(tmp_path / "partial.npz"))
    assert err.value.field == "Mixed_7a.branch3x3_1.conv.weight"


@pytest.mark.parametrize("name", ["tiny_legacy.pth", "tiny_zip.pth"])
def test_read_torch_state_dict_without_torch(ref, name):
    got = read_torch_state_dict(FIXTURES / name)
    assert list(got) == [str(k) for k in ref["pth_keys"]]
    for key, value in got.items():
        expected = ref[f"pth_{key}"]
        assert value.dtype == expected.dtype and value.shape == expected.shape, key
        np.testing.assert_array_equal(value, expected, err_msg=key)
    assert got["b"].shape == (4, 3) and np.array_equal(got["b"], got["a"].T)  # strided view of a shared storage


@pytest.mark.parametrize("name", ["tiny_legacy.pth", "tiny_zip.pth"])
def test_load_inception_reads_pth_then_validates(name):
    with pytest.raises(ConfigError, match="unexpected key|missing") as err:
        load_inception(str(FIXTURES / name))
    assert err.value.field != "path"  # the file was read; its keys are what is wrong


def test_reader_refuses_arbitrary_objects(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:  # the legacy layout: magic, protocol, sys_info, then the payload pickle
        for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(header, f, protocol=2)
        pickle.dump({"x": os.getcwd}, f, protocol=2)  # a global outside the allow-list
        f.write(struct.pack("<q", 0))
    with pytest.raises(ConfigError, match="refusing to load") as err:
        read_torch_state_dict(path)
    assert err.value.field == "path"
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="cannot read"):
        load_inception(str(tmp_path / "junk.pth"))


def test_cli_convert_refuses_an_incomplete_checkpoint(tmp_path, capsys):
    out = tmp_path / "out.npz"
    assert main(["--convert", str(FIXTURES / "tiny_zip.pth"), str(out)]) == 1
    assert not out.exists()
    assert "missing from the weights" in capsys.readouterr().err


@pytest.mark.parametrize(
    "images,kwargs,match",
    [
        (np.zeros((1, 20, 20, 3), np.uint8), {}, "dtype"),
        (np.full((1, 20, 20, 3), 2.0, np.float32), {}, r"\[0, 1\]"),
        (np.zeros((1, 20, 20, 2), np.float32), {}, "C = 1 or 3"),
        (np.zeros((20, 20, 3), np.float32), {}, "C = 1 or 3"),
        (np.zeros((1, 60, 80, 3), np.float32), {"resize": False}, ">= 75"),
        (np.zeros((1, 20, 20, 3), np.float32), {"batch_size": 0}, "batch_size"),
    ],
)
def test_features_input_validation(net, images, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        net.features(images, **kwargs)
