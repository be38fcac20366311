"""CNN emulators of land and ocean carbon models over tiles with halos (``docs/emulator.md``)."""
