"""The tile CNN, its emulator wrapper and checkpoints in an Icechunk store."""

import icechunk
import numpy as np
import pytest
import torch
import zarr

from carbonsink.emulator.base import EmulatorError, EmulatorMetadata
from carbonsink.emulator.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from carbonsink.emulator.cnn import CnnEmulator, TileCNN
from carbonsink.emulator.inputs import input_channels
from carbonsink.emulator.tiles import pad_global, predict_global
from carbonsink.grid import ModelGrid


def metadata(channels, hidden=8, variant="mean-teacher"):
    return EmulatorMetadata(
        member="fake",
        variant=variant,
        grid_resolution=10.0,
        channels=channels,
        normalisation={c: (0.0, 1.0) for c in channels},
        target_scale={"land_flux": 1e-8, "ocean_flux": 2e-8},
        halo=TileCNN.halo,
        architecture={"in_channels": len(channels), "hidden": hidden, "out_channels": 2},
    )


def fake_emulator(seed=0):
    torch.manual_seed(seed)
    chans = input_channels(["t2m", "sst"])
    return CnnEmulator.build(metadata(chans), torch.device("cpu"))


def test_shapes_and_output_scale():
    emu = fake_emulator()
    x = torch.randn(3, len(emu.metadata.channels), 10 + 4, 12 + 4)
    y = emu.predict(x)
    assert y.shape == (3, 2, 10, 12)
    raw = emu.module(x.contiguous(memory_format=torch.channels_last)).detach()
    np.testing.assert_allclose(y[:, 1].numpy(), raw[:, 1].numpy() * 2e-8, rtol=1e-5)


def test_cnn_tiles_join_without_seams():
    emu = fake_emulator()
    x = np.random.default_rng(0).normal(size=(len(emu.metadata.channels), 18, 36)).astype("f4")
    whole = emu.predict_numpy(pad_global(x, 2)[None])[0]
    tiled = predict_global(emu.predict_numpy, x, emu.halo, (9, 18), batch=2)
    np.testing.assert_allclose(tiled, whole, rtol=1e-5, atol=1e-14)


def store():
    repo = icechunk.Repository.create(icechunk.in_memory_storage())
    return repo, repo.writable_session("main")


def test_checkpoint_round_trip_without_pickle():
    emu = fake_emulator(seed=3)
    repo, session = store()
    path = save_checkpoint(session.store, emu)
    session.commit("ckpt")
    ro = repo.readonly_session("main").store
    assert list_checkpoints(ro) == [("mean-teacher", "fake")]
    # Weights are plain Zarr arrays, metadata plain JSON attributes.
    g = zarr.open_group(ro, path=path, mode="r")
    assert g.attrs["metadata"]["channels"] == emu.metadata.channels
    assert all(isinstance(a, zarr.Array) for _, a in g["weights"].arrays())
    back = load_checkpoint(ro, "fake", grid=ModelGrid(10.0), drivers=["t2m", "sst", "pr"])
    x = torch.randn(2, len(emu.metadata.channels), 9, 9)
    torch.testing.assert_close(back.predict(x), emu.predict(x))
    assert back.metadata == emu.metadata


def test_checkpoint_for_another_grid_or_driver_set_is_refused():
    repo, session = store()
    save_checkpoint(session.store, fake_emulator())
    session.commit("ckpt")
    ro = repo.readonly_session("main").store
    with pytest.raises(EmulatorError, match=r"trained on the 10.0 deg grid.*0.25 deg"):
        load_checkpoint(ro, "fake", grid=ModelGrid(0.25))
    with pytest.raises(EmulatorError, match=r"needs driver.*sst"):
        load_checkpoint(ro, "fake", drivers=["t2m"])
    with pytest.raises(EmulatorError, match="no supervised emulator for member 'fake'"):
        load_checkpoint(ro, "fake", "supervised")


def test_metadata_format_is_checked():
    meta = metadata(["a_anom", "a_clim"])
    assert meta.drivers == ["a"]
    d = EmulatorMetadata.from_json(meta.to_json())
    assert d == meta
    bad = meta.to_json().replace('"format": 1', '"format": 99')
    with pytest.raises(EmulatorError, match="checkpoint format 99"):
        EmulatorMetadata.from_json(bad)
