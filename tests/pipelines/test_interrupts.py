"""Interrupted and refused runs through the command line, with the default engines.

Every command here runs as a user runs it: a ``carbonsink`` process of its own, which
starts its own Dask LocalCluster (and Ray, for serve). Ctrl-C (SIGINT to the process
group, as a terminal sends it), SIGTERM (as Kubernetes sends it on eviction) and SIGKILL
mid-ingest; errors raised inside Dask tasks; a lake that is read-only, full, a file or
missing. Each ends with the right exit code, one line on stderr, and the lake as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from carbonsink.lake.lake import Lake
from pipelines.lake.compact import run_compact
from pipelines.lake.transaction import StoreTransaction, new_run_id
from tests import cds_files
from tests.helpers import lake_state
from tests.pipelines.test_cli import run_cli
from tests.tiny_lake import TINY_ENV

pytestmark = pytest.mark.integration


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONSINK_")}
    return {**env, **TINY_ENV, "CARBONSINK_PROGRESS": "0"}


def start(
    *args: str, prefix: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> subprocess.Popen:
    """``carbonsink ARGS`` in a process group of its own (a terminal's job)."""
    return subprocess.Popen(
        [*prefix, sys.executable, "-m", "pipelines.cli", *args],
        env={**_env(), **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip


def finish(proc: subprocess.Popen, timeout: float = 180) -> tuple[int, str, list[str]]:
    """Exit code, stdout and the non-empty stderr lines (Ray's forwarded ones left out)."""
    out, err = proc.communicate(timeout=timeout)
    lines = [x for x in err.splitlines() if x.strip() and "(raylet)" not in x]
    return proc.returncode, out, lines


def run(*args: str, prefix: tuple[str, ...] = ()) -> tuple[int, str, list[str]]:
    return finish(start(*args, prefix=prefix))


def wait_for_open_run(root: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Until the command holds a run branch of the lake (its transaction is open)."""
    deadline = time.monotonic() + timeout
    while not list((root / "runs").glob("*.json")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no run branch opened"
        time.sleep(0.05)


@pytest.fixture
def own_lake(lake, tmp_path):
    root = tmp_path / "lake"
    shutil.copytree(lake, root)
    return root


def ingest(root: Path, source: str) -> tuple[str, ...]:
    return ("ingest", "--source", source, "--lake", str(root), "--start", "2016-01",
            "--end", "2016-12")  # fmt: skip


@pytest.mark.parametrize(
    ("signum", "code", "group"),
    [(signal.SIGINT, 130, True), (signal.SIGTERM, 143, False)],
    ids=["ctrl-c", "sigterm"],
)
def test_a_signal_mid_ingest_exits_with_its_code_and_leaves_the_lake(
    own_lake, monthly_store, signum, code, group
):
    before = lake_state(own_lake)
    proc = start(*ingest(own_lake, monthly_store))
    wait_for_open_run(own_lake, proc)
    # Ctrl-C reaches the whole job (the Dask workers too); Kubernetes signals the driver.
    (os.killpg if group else os.kill)(proc.pid, signum)
    rc, _, err = finish(proc)
    assert rc == code, err
    assert len(err) == 1 and err[0].startswith(f"interrupted by {signum.name}"), err
    assert lake_state(own_lake) == before  # no run-* branch, no record, main unmoved


def test_a_run_killed_outright_leaves_a_branch_that_compact_removes(own_lake, monthly_store):
    before = lake_state(own_lake)
    proc = start(*ingest(own_lake, monthly_store))
    wait_for_open_run(own_lake, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    lake = Lake(str(own_lake))
    features = lake.open_repo("features")
    assert features is not None
    assert len([b for b in features.list_branches() if b.startswith("run-")]) == 1
    # A run still at work (this process's own) keeps its branch.
    with StoreTransaction(lake, "labels", new_run_id()) as live:
        done = {c.store: c for c in run_compact(lake, 30)}
        assert live.branch in live.repo.list_branches()
    assert done["features"].branches == 1 and done["labels"].branches == 0
    after = lake_state(own_lake)
    del after["stores"]["plans"]  # compact holds the lake's run lock, kept in the plans store
    assert after == before


def test_an_error_in_a_dask_task_is_one_line_with_the_default_engines(tmp_path):
    """The issue's case: CDS monthly means whose radiation is in the wrong units fail in
    the task that checks the month, on a worker of the command's own LocalCluster."""
    cds_files.monthly_download(tmp_path / "cds", "2024-01", "2024-03", resolution=4.0,
                               ssrd=3.6e8)  # fmt: skip
    target = tmp_path / "new-lake"
    rc, _, err = run("ingest", "--source", str(tmp_path / "cds" / "*.nc"), "--lake",
                     str(target), "--start", "2024-01", "--end", "2024-03")  # fmt: skip
    assert rc == 2, err
    assert len(err) == 1 and "rsds for 2024-0" in err[0] and "check the units" in err[0], err
    assert not target.exists()


#: Runs several commands through the CLI's entry point in one process (one import of
#: carbonsink for all): ``python -c _COMMANDS '[[argv...], ...]'`` prints, per command, its
#: exit code and its stderr, as JSON.
_COMMANDS = (
    "import contextlib, io, json, sys\n"
    "from pipelines.cli import main\n"
    "done = []\n"
    "for argv in json.loads(sys.argv[1]):\n"
    "    err = io.StringIO()\n"
    "    with contextlib.redirect_stderr(err):\n"
    "        try:\n"
    "            main(argv)\n"
    "            code = 0\n"
    "        except SystemExit as exc:\n"
    "            code = exc.code\n"
    "    done.append([code, err.getvalue()])\n"
    "print(json.dumps(done))\n"
)


def run_in_namespace(setup: str, commands: list[list[str]], after: str = "true") -> list:
    """``commands`` in a mount namespace of their own (``unshare``: the mounts vanish with
    it), after the shell commands ``setup``; ``after`` runs there when they are done."""
    script = f'{setup} && "$0" "$@" && {after}'
    proc = subprocess.run(
        ["unshare", "--map-root-user", "--mount", "sh", "-c", script, sys.executable, "-c",
         _COMMANDS, json.dumps(commands)],
        env=_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [
        (code, [x for x in err.splitlines() if x.strip() and "(raylet)" not in x])
        for code, err in json.loads(proc.stdout.strip().splitlines()[-1])
    ]


def test_a_read_only_lake_is_named_so(mapped_lake, monthly_store, tmp_path):
    """A read-only mount of the lake, for a command of each way of writing: an ingest (a
    transaction), the budget, the report (plain files) and compact (the lock's store)."""
    root = tmp_path / "lake"
    shutil.copytree(mapped_lake, root)
    before = lake_state(root)
    commands = [
        list(ingest(root, monthly_store)),
        ["budget", "--lake", str(root)],
        ["report", "--lake", str(root)],
        ["compact", "--lake", str(root)],
    ]
    ro = f"mount --bind {root} {root} && mount -o remount,bind,ro {root}"
    for argv, (rc, err) in zip(commands, run_in_namespace(ro, commands), strict=True):
        assert rc == 2, (argv[0], err)
        assert len(err) == 1 and "is read-only (Read-only file system)" in err[0], (argv[0], err)
        assert "run the same command again" not in err[0]
    assert lake_state(root) == before


#: Files left half-written under a folder (none may be): partial files, truncated PNGs.
_HALF_WRITTEN = (
    "import pathlib, sys; root = pathlib.Path(sys.argv[1]); "
    "print(*[p for p in root.rglob('*') if p.is_file() and ('.partial' in p.name or "
    "(p.suffix == '.png' and not p.read_bytes().endswith(bytes.fromhex('ae426082'))))])"
)


def test_a_full_disk_is_named_so_and_leaves_no_half_file(mapped_lake, tmp_path):
    """The lake on a small file system, filled up: the budget (Icechunk) and the report
    (plain files) fail in one line each, and leave no half-written file."""
    disk = tmp_path / "disk"
    disk.mkdir()
    blocks = sum(-(-f.stat().st_size // 4096) for f in mapped_lake.rglob("*") if f.is_file())
    size_mb = blocks * 4096 // 2**20 + 16
    setup = (
        f"mount -t tmpfs -o size={size_mb}m tmpfs {disk} && cp -r {mapped_lake} {disk}/lake && "
        f"(head -c {size_mb}m /dev/zero > {disk}/fill 2>/dev/null; true)"
    )
    half = tmp_path / "half-written.txt"
    after = f'{sys.executable} -c "{_HALF_WRITTEN}" {disk}/lake > {half}'
    lake = str(disk / "lake")
    commands = [["budget", "--lake", lake], ["report", "--lake", lake]]
    for argv, (rc, err) in zip(commands, run_in_namespace(setup, commands, after), strict=True):
        assert rc == 2, (argv[0], err)
        assert len(err) == 1 and "has no space left (No space left on device)" in err[0], err
    assert half.read_text().split() == []


@pytest.mark.parametrize("command", ["budget", "report", "export"])
def test_a_lake_path_that_is_a_file_or_missing_is_refused_and_nothing_made(
    tmp_path, capsys, command
):
    """(In-process: these commands start no engine.)"""
    extra = ("--start", "2016-01", "--end", "2016-01", "--out", str(tmp_path / "x.nc"))
    args = extra if command == "export" else ()
    afile = tmp_path / "lake.txt"
    afile.write_text("not a lake")
    rc, _, err = run_cli([command, "--lake", str(afile), *args], capsys)
    assert rc == 2 and err.count("\n") == 1 and "is a file, not a lake" in err, err
    assert afile.read_text() == "not a lake"
    missing = tmp_path / "nowhere"
    rc, _, err = run_cli([command, "--lake", str(missing), *args], capsys)
    assert rc == 2 and err.count("\n") == 1, err
    assert not missing.exists()  # refused, and nothing created on the way


def test_serve_listens_on_loopback_only_and_stops_cleanly(mapped_lake):
    """Every process the command starts (Ray's GCS, raylet, agents, workers, Serve's
    replicas and proxy) listens on 127.0.0.1 only; SIGTERM stops it with exit 0.

    SIGTERM because Ray's own handler for it would end the process at once (the command
    puts its own back); SIGINT takes the path of the ingest's Ctrl-C above.
    """
    signum = signal.SIGTERM
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = start("serve", "--lake", str(mapped_lake), "--port", str(port),
                 env={"CARBONSINK_SERVE__NUM_REPLICAS": "1"})  # fmt: skip
    try:
        said = []
        assert proc.stdout is not None
        while not said or not said[-1].startswith("stop with"):  # up: deployed and ready
            line = proc.stdout.readline()
            assert line, proc.communicate()
            said.append(line)
        listening = []
        root = psutil.Process(proc.pid)
        for p in [root, *root.children(recursive=True)]:
            try:
                listening += [
                    (p.name(), c.laddr.ip, c.laddr.port)
                    for c in p.net_connections(kind="inet")
                    if c.status == psutil.CONN_LISTEN
                ]
            except psutil.Error:
                continue
        assert len(listening) > 5
        assert all(ip in ("127.0.0.1", "::ffff:127.0.0.1") for _, ip, _ in listening), listening
        assert any(p == port for _, _, p in listening)
        os.kill(proc.pid, signum)
        rc, out, err = finish(proc, timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert rc == 0, err
    out = "".join(said) + out
    assert f"{signum.name}: shutting the application down" in out and "stopped" in out
    assert not [x for x in err if "Traceback" in x or "Error" in x], err
