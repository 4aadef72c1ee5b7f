"""The Python API over the engine: same answers as the CLI, errors as exceptions, the
interpreter released while the engine works."""

import hashlib
import json
import os
import random
import subprocess
import sys
import threading
import time

import pytest

import nasheed
from conftest import CLIPS, REFS, REPO, cli_jsonl, corrupt_inputs, melody_wav, tiled_wav

MATCH_FIELDS = [
    "ref_id", "title", "ref_path", "ref_sha256", "meta", "query_start_s", "query_end_s",
    "ref_start_s", "ref_end_s", "speed", "score", "confidence", "evidence",
]


@pytest.fixture(scope="module")
def memory_index() -> nasheed.Index:
    ix = nasheed.Index(":memory:")
    for ref in sorted(REFS.iterdir()):
        ix.add(ref, meta={"group": "demo"})
    return ix


def test_scans_report_what_the_cli_reports(tmp_path, nasheed_cli):
    # The CLI indexes, Python opens the same file and scans: every field of every match agrees.
    db = tmp_path / "demo.db"
    subprocess.run([str(nasheed_cli), "--db", str(db), "index", str(REFS)], check=True,
                   capture_output=True)
    clips = sorted(CLIPS.iterdir())
    records = cli_jsonl(nasheed_cli, db, *clips)
    ix = nasheed.Index(db)
    assert sum(len(r["matches"]) for r in records) == 2
    for clip, record in zip(clips, records):
        got = [m.to_dict() for m in ix.scan(clip)]
        assert got == record["matches"], clip
        assert got == [m.to_dict() for m in ix.scan(clip.read_bytes())], clip


def test_an_index_built_in_python_finds_what_the_cli_finds(memory_index, tmp_path, nasheed_cli):
    db = tmp_path / "cli.db"
    subprocess.run([str(nasheed_cli), "--db", str(db), "index", str(REFS)], check=True,
                   capture_output=True)
    for clip, record in zip(sorted(CLIPS.iterdir()), cli_jsonl(nasheed_cli, db, *sorted(CLIPS.iterdir()))):
        got = memory_index.scan(clip)
        want = record["matches"]
        assert [m.ref_sha256 for m in got] == [w["ref_sha256"] for w in want], clip
        for m, w in zip(got, want):
            for f in ("query_start_s", "query_end_s", "ref_start_s", "ref_end_s"):
                assert abs(getattr(m, f) - w[f]) <= 0.001, (clip, f)
            assert m.confidence == w["confidence"] and m.score == w["score"]
            assert m.meta == {"group": "demo"}


def test_match_is_typed_with_the_contract_fields(memory_index):
    [m] = memory_index.scan(CLIPS / "upload_a.mp4")
    assert list(m.to_dict()) == MATCH_FIELDS  # pitch_cents only when present
    assert isinstance(m.ref_id, int) and isinstance(m.confidence, float)
    # The numbers behind the confidence, as the CLI's JSON gives them.
    assert m.evidence["peaks_found"] <= m.evidence["peaks_checked"]
    assert m.evidence == json.loads(m.evidence_json)
    assert m.title == "song102" and m.pitch_cents is None
    assert m.ref_sha256 == hashlib.sha256((REFS / "song102.ogg").read_bytes()).hexdigest()
    assert 12.5 < m.ref_start_s < 12.7 and m.speed == 1.0
    with pytest.raises(AttributeError):
        m.title = "changed"  # frozen
    assert memory_index.scan(CLIPS / "upload_c.opus") == []


def test_references_add_and_remove(tmp_path):
    ix = nasheed.Index(tmp_path / "refs.db")
    a = ix.add(REFS / "song101.ogg", title="Chant one", meta={"language": "ar"})
    b = ix.add((REFS / "song102.ogg").read_bytes())
    # The same content again is the stored copy, whatever its name.
    assert ix.add(REFS / "song101.ogg", title="again") == a
    refs = {r.id: r for r in ix.references()}
    assert set(refs) == {a, b}
    assert (refs[a].title, refs[a].meta, refs[a].path) == ("Chant one", {"language": "ar"}, str(REFS / "song101.ogg"))
    assert refs[b].path == "<bytes>" and refs[b].n_hashes > 100 and 39 < refs[b].duration_s < 41
    # By SHA-256 prefix, then by id; a second removal finds nothing.
    assert ix.remove(refs[b].sha256[:12]) is True
    assert ix.remove(a) is True and ix.remove(a) is False
    assert ix.references() == []
    with pytest.raises(nasheed.NasheedError) as e:
        ix.scan(CLIPS / "upload_a.mp4")
    assert e.value.kind == "empty_index" and "no references" in str(e.value)
    with pytest.raises(ValueError):
        ix.remove("abc")  # neither an id nor 8+ hex digits


def test_an_index_file_keeps_its_references(tmp_path):
    path = tmp_path / "kept.db"
    nasheed.Index(str(path)).add(REFS / "song103.ogg")
    [m] = nasheed.Index(path).scan(CLIPS / "upload_b.mp3")
    assert m.title == "song103"


def test_fingerprints_are_packs_that_import_and_scan(tmp_path, memory_index):
    pack = nasheed.fingerprint(REFS / "song102.ogg", title="Chant two", meta={"group": "g1"})
    [entry] = nasheed.read_fingerprint(pack)
    assert (entry.title, entry.file, entry.meta) == ("Chant two", "song102.ogg", {"group": "g1"})
    assert pack[:8] == b"NSHPACK\0"
    # Deterministic, and a function of the content alone without title and name.
    assert nasheed.fingerprint(REFS / "song102.ogg", title="Chant two", meta={"group": "g1"}) == pack
    bare = nasheed.fingerprint(REFS / "song102.ogg", title="", name="")
    assert nasheed.fingerprint((REFS / "song102.ogg").read_bytes(), title="", name="") == bare

    ix = nasheed.Index(":memory:")
    [i] = ix.add_fingerprint(pack, meta={"source": "partner"})
    assert ix.add_fingerprint(bare) == [i]  # the same recording: already there
    [ref] = ix.references()
    assert ref.meta == {"group": "g1", "source": "partner"} and ref.title == "Chant two"
    [m] = ix.scan(CLIPS / "upload_a.mp4")
    assert m.ref_id == i and m.ref_path == "song102.ogg"
    # A clip known only by its fingerprint finds the same stretch.
    [f] = ix.scan_fingerprint(nasheed.fingerprint(CLIPS / "upload_a.mp4"))
    assert f.ref_id == i and abs(f.ref_start_s - m.ref_start_s) < 0.05
    assert ix.scan_fingerprint(nasheed.fingerprint(CLIPS / "upload_c.opus")) == []
    # The shipped demo pack (nasheed export) holds three recordings.
    demo = (REPO / "fingerprints" / "demo.nshpack").read_bytes()
    assert len(nasheed.read_fingerprint(demo)) == 3
    assert len(set(nasheed.Index(":memory:").add_fingerprint(demo))) == 3
    with pytest.raises(nasheed.NasheedError, match="one-track"):
        ix.add_fingerprint(demo, title="one title for three")


def test_a_pack_folder_is_a_read_only_index():
    ix = nasheed.Index(REPO / "fingerprints")
    assert len(ix.references()) == 3
    assert [m.title for m in ix.scan(CLIPS / "upload_b.mp3")] == ["song103"]
    with pytest.raises(nasheed.NasheedError, match="read-only") as e:
        ix.add(REFS / "song101.ogg")
    assert e.value.kind == "index"


def wrong_params(pack: bytes) -> bytes:
    """`pack` relabelled as made with other fingerprint parameters (checksum recomputed)."""
    body = pack[:-32].replace(nasheed.PARAMS_ID.encode(), b"fp1-000000000000", 1)
    assert body != pack[:-32]
    return body + hashlib.sha256(body).digest()


@pytest.mark.parametrize("name", sorted(corrupt_inputs()))
def test_corrupt_files_raise_one_line_errors(name, memory_index, tmp_path):
    data = corrupt_inputs()[name]
    path = tmp_path / name
    path.write_bytes(data)
    for call in (nasheed.fingerprint, memory_index.scan, memory_index.add):
        for source, shown in ((path, str(path)), (data, "<bytes>")):
            with pytest.raises(nasheed.NasheedError) as e:
                call(source)
            msg = str(e.value)
            assert msg.startswith(shown + ": ") and "\n" not in msg, msg
            assert e.value.kind == "undecodable", msg


def test_non_audio_and_missing_files_raise(memory_index, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("this is not audio\n" * 100)
    with pytest.raises(nasheed.NasheedError, match=r"notes.txt: not a supported audio or video file") as e:
        memory_index.scan(text)
    assert e.value.kind == "undecodable"
    image = REPO / "tests" / "fixtures" / "image.png"
    with pytest.raises(nasheed.NasheedError, match="image.png: "):
        nasheed.fingerprint(image)
    with pytest.raises(nasheed.NasheedError) as e:
        memory_index.scan(tmp_path / "missing.mp3")
    assert e.value.kind == "unreadable" and "missing.mp3" in str(e.value)
    with pytest.raises(nasheed.NasheedError, match="<bytes>: "):
        nasheed.fingerprint(b"")


def test_bad_fingerprints_raise(memory_index):
    pack = nasheed.fingerprint(CLIPS / "upload_a.mp4")
    other = wrong_params(pack)
    for call in (nasheed.read_fingerprint, memory_index.add_fingerprint, memory_index.scan_fingerprint):
        with pytest.raises(nasheed.NasheedError, match=r"fingerprint parameters fp1-000000000000, this build uses " + nasheed.PARAMS_ID) as e:
            call(other)
        assert e.value.kind == "bad_pack" and "\n" not in str(e.value)
        with pytest.raises(nasheed.NasheedError, match="checksum"):
            call(pack[:-1] + bytes([pack[-1] ^ 1]))
        with pytest.raises(nasheed.NasheedError, match="not a nasheed fingerprint pack"):
            call(b"garbage")
    demo = (REPO / "fingerprints" / "demo.nshpack").read_bytes()
    with pytest.raises(nasheed.NasheedError, match="expected a one-track pack, this one has 3 tracks") as e:
        memory_index.scan_fingerprint(demo)
    assert e.value.kind == "bad_pack"


def test_garbage_never_crashes_the_interpreter(memory_index):
    rng = random.Random(4)
    pack = nasheed.fingerprint(CLIPS / "upload_b.mp3")
    for i in range(60):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 4000)))
        # Random bytes, and a valid pack with bytes overwritten (checksum then fails first).
        mangled = bytearray(pack)
        for _ in range(rng.randrange(1, 8)):
            mangled[rng.randrange(len(mangled))] = rng.randrange(256)
        for data in (junk, b"NSHPACK\0" + junk, bytes(mangled)):
            for call in (nasheed.fingerprint, memory_index.scan, nasheed.read_fingerprint,
                         memory_index.scan_fingerprint):
                try:
                    call(data)
                except nasheed.NasheedError as e:
                    assert "\n" not in str(e) and e.kind
    assert len(memory_index.scan(CLIPS / "upload_a.mp4")) == 1  # and it still works


def test_wrong_arguments_are_python_errors(memory_index):
    with pytest.raises(TypeError, match="path .* or bytes"):
        memory_index.scan(42)
    with pytest.raises(ValueError, match="min_confidence"):
        memory_index.scan(CLIPS / "upload_a.mp4", min_confidence=95)
    with pytest.raises(TypeError):
        nasheed.fingerprint(REFS / "song101.ogg", meta={"n": 1})
    assert memory_index.scan(CLIPS / "upload_b.mp3", min_confidence=1.0) == []


def test_the_interpreter_runs_while_the_engine_works():
    # Five minutes of audio take the engine a good fraction of a second; had it kept the
    # interpreter, this thread could not count meanwhile.
    long = tiled_wav(melody_wav(12.0), 25)
    started = threading.Event()
    result = []

    def work():
        started.set()
        result.append(nasheed.fingerprint(long))

    t = threading.Thread(target=work)
    t.start()
    started.wait()
    count, t0 = 0, time.perf_counter()
    while t.is_alive():
        count += 1
    elapsed = time.perf_counter() - t0
    t.join()
    assert result and elapsed > 0.05, elapsed
    assert count > 10_000, (count, elapsed)


def test_scans_from_threads_agree(tmp_path, memory_index):
    from concurrent.futures import ThreadPoolExecutor

    db = tmp_path / "threads.db"
    ix = nasheed.Index(db)
    for ref in sorted(REFS.iterdir()):
        ix.add(ref)
    clips = sorted(CLIPS.iterdir()) * 4
    alone = [[m.ref_sha256 for m in ix.scan(c)] for c in clips]
    with ThreadPoolExecutor(4) as ex:
        together = list(ex.map(lambda c: [m.ref_sha256 for m in ix.scan(c)], clips))
    assert together == alone and sum(map(len, alone)) == 8


def readme_script() -> str:
    """The example script of python/README.md (its first python block)."""
    text = (REPO / "python" / "README.md").read_text()
    start = text.index("```python\n") + len("```python\n")
    return text[start : text.index("```", start)]


def test_the_readme_script_prints_what_the_cli_finds(tmp_path, nasheed_cli):
    script = readme_script()
    assert len(script.strip().splitlines()) <= 10
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    db = tmp_path / "demo.db"
    subprocess.run([str(nasheed_cli), "--db", str(db), "index", "examples/refs"], cwd=REPO,
                   check=True, capture_output=True)
    clips = sorted(p.relative_to(REPO) for p in CLIPS.iterdir())
    want = []
    for r in cli_jsonl(nasheed_cli, db, *clips):
        for m in r["matches"]:
            want.append(
                f"{r['path']}: {m['title']} upload {m['query_start_s']:.3f}-{m['query_end_s']:.3f}"
                f" = reference {m['ref_start_s']:.3f}-{m['ref_end_s']:.3f} confidence {m['confidence']}"
            )
    assert len(want) == 2
    assert [line.rsplit(" {", 1)[0] for line in out] == want
    # And the README shows what it prints.
    readme = (REPO / "python" / "README.md").read_text()
    assert all(line in readme for line in out), out
