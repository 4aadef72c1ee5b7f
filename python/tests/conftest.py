"""Shared fixtures: the repository's example audio, the nasheed CLI, synthetic recordings."""

import io
import os
import pathlib
import shutil
import struct
import subprocess
import typing as t
import wave

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
REFS = REPO / "examples" / "refs"
CLIPS = REPO / "examples" / "clips"


def melody_wav(seconds: float, seed: int = 17) -> bytes:
    """A synthetic recording (the extension's example melody), as WAV bytes."""
    from nasheed.tx_extension.signal import _melody_wav

    return _melody_wav(seconds, seed=seed)


def tiled_wav(wav: bytes, times: int) -> bytes:
    """`wav` played `times` times over, as one WAV."""
    with wave.open(io.BytesIO(wav)) as r:
        params = r.getparams()
        frames = r.readframes(r.getnframes())
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setparams(params)
        w.writeframes(frames * times)
    return out.getvalue()


def corrupt_inputs() -> t.Dict[str, bytes]:
    """Files that look like audio and are not: a WAV whose header says 0 Hz, an MP4 cut
    before its index (no moov atom), an Ogg stream cut inside its first page."""
    wav = bytearray(melody_wav(3.0))
    wav[24:28] = struct.pack("<I", 0)
    return {
        "rate0.wav": bytes(wav),
        "cut.mp4": (CLIPS / "upload_a.mp4").read_bytes()[:2000],
        "cut.ogg": (REFS / "song101.ogg").read_bytes()[:300],
    }


@pytest.fixture(scope="session")
def nasheed_cli() -> pathlib.Path:
    """The nasheed binary: $NASHEED_BIN, else target/release/nasheed of this checkout (or of
    $CARGO_TARGET_DIR). Missing, the tests that compare with it fail: they never skip."""
    candidates = [os.environ.get("NASHEED_BIN")]
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(os.path.join(os.environ["CARGO_TARGET_DIR"], "release", "nasheed"))
    candidates.append(str(REPO / "target" / "release" / "nasheed"))
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return pathlib.Path(c)
    found = shutil.which("nasheed")
    if found:
        return pathlib.Path(found)
    pytest.fail(
        "no nasheed binary: build it (cargo build --release) or set NASHEED_BIN", pytrace=False
    )


def cli_jsonl(cli: pathlib.Path, db: pathlib.Path, *paths: pathlib.Path) -> t.List[dict]:
    """`nasheed --db DB scan --format jsonl PATHS`: one record per input."""
    import json

    out = subprocess.run(
        [str(cli), "--db", str(db), "scan", "--format", "jsonl", *map(str, paths)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert out.returncode in (0, 1), out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


# CI must never pass by skipping: a skipped test (a missing dependency, a missing binary)
# fails the run.
_SKIPPED: t.List[str] = []


def pytest_runtest_logreport(report) -> None:
    if report.skipped:
        _SKIPPED.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus) -> None:
    if _SKIPPED and exitstatus == 0:
        print(f"\n{len(_SKIPPED)} test(s) skipped, which counts as a failure: {_SKIPPED}")
        session.exitstatus = 1
