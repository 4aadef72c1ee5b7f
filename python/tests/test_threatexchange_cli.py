"""End to end through the `threatexchange` CLI, as a user or HMA's developers try an
extension: add it, hash the example references into a signal file, fetch it as a local_file
collaboration, then hash and match clips. The CLI's state lives in a temporary HOME, never the
user's own ~/.threatexchange."""

import os
import pathlib
import subprocess
import sys
import typing as t

import pytest

from conftest import CLIPS, REFS


class TxCli:
    """Runs `python -m threatexchange` with HOME in a private folder."""

    def __init__(self, home: pathlib.Path) -> None:
        self.home = home
        self.env = {**os.environ, "HOME": str(home)}

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "-m", "threatexchange", *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
        )
        if ok:
            assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done


@pytest.fixture(scope="module")
def tx(tmp_path_factory) -> TxCli:
    home = tmp_path_factory.mktemp("home")
    cli = TxCli(home)
    added = cli("config", "extensions", "add", "nasheed.tx_extension").stdout
    assert "nasheed - NasheedSignal" in added and "audio - AudioContent" in added
    assert "nasheed.tx_extension" in cli("config", "extensions", "list").stdout
    # Signals of the example references, as `threatexchange hash` prints them.
    lines = [cli("hash", "audio", str(ref)).stdout.strip() for ref in sorted(REFS.iterdir())]
    assert all(line.startswith("nasheed ") for line in lines) and len(lines) == 3
    signals = home / "signals.txt"
    signals.write_text("\n".join(lines) + "\n")
    cli("config", "collab", "edit", "local_file", "--create", "refs", f"--filename={signals}")
    cli("fetch")
    # The state is in the private HOME.
    assert (home / ".threatexchange" / "config.json").is_file()
    return cli


def matches(out: str) -> t.List[t.List[str]]:
    return [line.split() for line in out.splitlines() if line.startswith("nasheed ")]


def test_a_clip_matches_the_reference_it_was_cut_from(tx):
    [[kind, distance, collab, *_]] = matches(tx("match", "audio", str(CLIPS / "upload_b.mp3")).stdout)
    assert (kind, collab) == ("nasheed", "(refs)")
    # confidence@upload stretch=reference stretch: song103 from 21.1 s on (the CLI's numbers).
    confidence, stretches = distance.split("@")
    assert float(confidence) >= 0.99 and stretches.endswith("=21.47-26.61s"), distance


def test_a_video_is_matched_by_its_sound(tx):
    for content in ("audio", "video"):
        [[_, distance, collab, *_]] = matches(tx("match", content, str(CLIPS / "upload_a.mp4")).stdout)
        assert collab == "(refs)" and distance.endswith("=12.61-20.40s"), distance


def test_a_hashed_clip_matches_as_a_hash(tx):
    line = tx("hash", "audio", str(CLIPS / "upload_a.mp4")).stdout.strip()
    kind, signal = line.split(" ", 1)
    assert kind == "nasheed"
    hashes = tx.home / "clip.hashes"
    hashes.write_text(signal + "\n")
    # Options first: everything after the content type is taken as files.
    out = tx("match", "--hashes", "--only-signal", "nasheed", "audio", str(hashes)).stdout
    assert len(matches(out)) == 1


def test_unrelated_audio_finds_nothing(tx):
    done = tx("match", "audio", str(CLIPS / "upload_c.opus"))
    assert matches(done.stdout) == [] and done.stdout.strip() == ""


def test_a_file_that_is_not_audio_fails_with_the_message(tx):
    notes = tx.home / "notes.txt"
    notes.write_text("not audio\n" * 20)
    done = tx("hash", "audio", str(notes), ok=False)
    assert done.returncode != 0
    assert f"NasheedError: {notes}: not a supported audio or video file" in done.stderr
