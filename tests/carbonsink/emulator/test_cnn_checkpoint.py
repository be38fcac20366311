"""The tile CNN, its emulator wrapper and checkpoints in an Icechunk store."""

import icechunk
import numpy as np
import pandas as pd
import pytest
import torch
import zarr

from carbonsink.emulator.base import CHECKPOINT_FORMAT, EmulatorError, EmulatorMetadata
from carbonsink.emulator.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from carbonsink.emulator.cnn import CnnEmulator, TileCNN
from carbonsink.emulator.inputs import BASELINE_CHANNELS, Baseline, input_channels
from carbonsink.emulator.tiles import pad_global, predict_global
from carbonsink.grid import ModelGrid


def metadata(channels, hidden=8, variant="mean-teacher", baseline=False):
    scale = {"land_flux": 1e-8, "ocean_flux": 2e-8}
    return EmulatorMetadata(
        member="fake",
        variant=variant,
        grid_resolution=10.0,
        channels=channels,
        # Baseline channels are normalised by the output scale, as training does.
        normalisation={c: (0.0, scale.get(c.removesuffix("_baseline"), 1.0)) for c in channels},
        target_scale=scale,
        halo=TileCNN.halo,
        architecture={
            "in_channels": len(channels), "hidden": hidden, "out_channels": 2,
            "baseline": baseline,
        },
    )  # fmt: skip


def fake_baseline(seed=0, shape=(18, 36)):
    rng = np.random.default_rng(seed)
    b = rng.normal(size=(12, 2, *shape)).astype("f4") * 1e-8
    b[:, 0, :3] = np.nan  # no land in the southernmost rows
    return Baseline(b)


def fake_emulator(seed=0):
    torch.manual_seed(seed)
    chans = input_channels(["t2m", "sst"])
    meta = metadata(chans, baseline=True)
    return CnnEmulator.build(meta, torch.device("cpu"), fake_baseline(seed))


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
    assert g["baseline"].shape == (12, 2, 18, 36)
    back = load_checkpoint(ro, "fake", grid=ModelGrid(10.0), drivers=["t2m", "sst", "pr"])
    x = torch.randn(2, len(emu.metadata.channels), 9, 9)
    torch.testing.assert_close(back.predict(x), emu.predict(x))
    assert back.metadata == emu.metadata
    assert back.baseline is not None and emu.baseline is not None
    np.testing.assert_array_equal(back.baseline.fields, emu.baseline.fields)


def test_baseline_network_adds_to_its_baseline():
    """With a zero head the output is the baseline channels (in output units), cropped."""
    emu = fake_emulator()
    with torch.no_grad():
        last = emu.module.head[-1]
        last.weight.zero_()
        last.bias.zero_()
    raw = np.random.default_rng(1).normal(size=(len(emu.metadata.channels) - 2, 18, 36))
    x = emu.prepare(raw.astype("f4"), calendar_month=5)
    assert emu.metadata.channels[-2:] == list(BASELINE_CHANNELS)
    y = predict_global(emu.predict_numpy, x, emu.halo, (9, 18))
    assert emu.baseline is not None
    expected = np.nan_to_num(emu.baseline.month(5))
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-14)


def test_baseline_is_the_calendar_month_mean():
    months = [pd.Period(f"{y}-{m:02d}", freq="M") for y in (2001, 2002) for m in range(1, 13)]
    fields = [np.full((2, 3, 4), float(m.year - 2000) * m.month) for m in months]
    for f in fields:
        f[0, 0, 0] = np.nan
    fields[0][1, 1, 1] = np.nan  # a gap in one year only: the other year's value stands
    b = Baseline.from_months(zip(months, fields, strict=True))
    np.testing.assert_allclose(b.month(3)[1, 2, 2], 4.5)  # (1 * 3 + 2 * 3) / 2
    assert np.isnan(b.month(3)[0, 0, 0])
    np.testing.assert_allclose(b.month(1)[1, 1, 1], 2.0)
    with pytest.raises(EmulatorError, match=r"no calendar month \[12\]"):
        Baseline.from_months(zip(months[:11], fields[:11], strict=True))


def test_baseline_network_needs_its_baseline():
    meta = metadata(input_channels(["t2m"]), baseline=True)
    with pytest.raises(EmulatorError, match="needs its baseline"):
        CnnEmulator.build(meta, torch.device("cpu"))


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
    bad = meta.to_json().replace(f'"format": {CHECKPOINT_FORMAT}', '"format": 99')
    with pytest.raises(EmulatorError, match="checkpoint format 99"):
        EmulatorMetadata.from_json(bad)
