"""NasheedSignal and NasheedIndex, through threatexchange's own SignalType test helper and
through the interfaces HMA calls (build, query, serialize, deserialize)."""

import base64
import functools
import io
import pathlib
import typing as t

import pytest
from threatexchange.content_type.video import VideoContent
from threatexchange.extensions.manifest import ThreatExchangeExtensionManifest
from threatexchange.interface_validation import SignalTypeMapping
from threatexchange.signal_type.index import SignalTypeIndex
from threatexchange.signal_type.signal_base import BytesHasher, FileHasher

import nasheed
from conftest import CLIPS, REFS, REPO, corrupt_inputs
from nasheed.tx_extension import (
    TX_MANIFEST,
    AudioContent,
    NasheedIndex,
    NasheedSignal,
    NasheedSimilarityInfo,
)
from test_binding import wrong_params
from threatexchange_helper.signal_type_test_helper import SignalTypeAutoTest


@functools.lru_cache(maxsize=None)
def signal(path: pathlib.Path) -> str:
    return NasheedSignal.hash_from_file(path)


class TestNasheedSignalWithThreatExchangeHelper(SignalTypeAutoTest):
    """threatexchange's auto-tests: name, examples, validation, comparison."""

    TYPE = NasheedSignal

    def get_validate_hash_cases(self):
        ref = signal(REFS / "song101.ogg")
        wrapped = "\n".join(ref[i : i + 76] for i in range(0, len(ref), 76))
        return [
            ref,
            (f"  {ref}\n", ref),  # surrounding blanks dropped
            (wrapped, ValueError),  # line breaks inside are not base64
            ("", ValueError),
            ("not base64 at all!", ValueError),
            (base64.b64encode(b"NSHPACK\0 but garbage").decode(), nasheed.NasheedError),
            (base64.b64encode(wrong_params(base64.b64decode(ref))).decode(), nasheed.NasheedError),
            # A pack of three recordings is no signal: one recording each.
            (base64.b64encode((REPO / "fingerprints" / "demo.nshpack").read_bytes()).decode(), ValueError),
        ]

    def get_compare_hash_cases(self):
        ref102, ref103 = signal(REFS / "song102.ogg"), signal(REFS / "song103.ogg")
        clip_a, clip_b = signal(CLIPS / "upload_a.mp4"), signal(CLIPS / "upload_b.mp3")
        clip_c = signal(CLIPS / "upload_c.opus")
        return [
            (ref102, clip_a, True),
            (ref103, clip_b, True),
            (ref102, clip_b, False),
            (ref103, clip_a, False),
            (ref102, clip_c, False),
            (signal(REFS / "song101.ogg"), clip_c, False),
        ]


def test_the_manifest_loads_and_maps_audio_and_video():
    loaded = ThreatExchangeExtensionManifest.load_from_module_name("nasheed.tx_extension")
    assert loaded is TX_MANIFEST
    assert TX_MANIFEST.signal_types == (NasheedSignal,)
    assert NasheedSignal.get_name() == "nasheed" and AudioContent.get_name() == "audio"
    mapping = SignalTypeMapping([AudioContent, VideoContent], list(TX_MANIFEST.signal_types))
    for content in (AudioContent, VideoContent):
        assert mapping.get_supported_signal_types_for_content(content) == [NasheedSignal]
    assert issubclass(NasheedSignal, FileHasher) and issubclass(NasheedSignal, BytesHasher)
    assert NasheedSignal.get_index_cls() is NasheedIndex


def test_a_signal_depends_on_the_content_alone(tmp_path):
    renamed = tmp_path / "renamed-upload"
    renamed.write_bytes((CLIPS / "upload_a.mp4").read_bytes())
    s = signal(CLIPS / "upload_a.mp4")
    assert NasheedSignal.hash_from_file(renamed) == s
    assert NasheedSignal.hash_from_bytes(renamed.read_bytes()) == s
    [entry] = nasheed.read_fingerprint(base64.b64decode(s))
    assert (entry.title, entry.file, entry.meta) == ("", "", {})
    # A video's signal is its sound's: the MP4 clip of song102 matches the reference.
    assert NasheedSignal.compare_hash(signal(REFS / "song102.ogg"), s).match


def test_a_signal_is_a_nasheed_pack():
    # What `nasheed import` reads and `nasheed export` writes: a signal goes both ways.
    s = signal(REFS / "song103.ogg")
    ix = nasheed.Index(":memory:")
    [i] = ix.add_fingerprint(base64.b64decode(s))
    assert [m.ref_id for m in ix.scan(CLIPS / "upload_b.mp3")] == [i]
    demo = nasheed.Index(REPO / "fingerprints")
    exported = {r.sha256 for r in demo.references()}
    assert nasheed.read_fingerprint(base64.b64decode(s))[0].sha256 in exported


@pytest.mark.parametrize("name", sorted(corrupt_inputs()))
def test_hashing_bad_files_raises_the_one_line_message(name, tmp_path):
    path = tmp_path / name
    path.write_bytes(corrupt_inputs()[name])
    with pytest.raises(nasheed.NasheedError, match=f"^{path}: ") as e:
        NasheedSignal.hash_from_file(path)
    assert "\n" not in str(e.value)
    with pytest.raises(nasheed.NasheedError, match="^<bytes>: "):
        NasheedSignal.hash_from_bytes(path.read_bytes())
    text = tmp_path / "notes.txt"
    text.write_text("not audio\n" * 50)
    with pytest.raises(nasheed.NasheedError, match="not a supported audio or video file"):
        NasheedSignal.hash_from_file(text)


def build_index() -> NasheedIndex:
    # Entries as HMA gives them (bank content ids), one recording under two ids.
    entries = [(signal(REFS / f"song10{i}.ogg"), 100 + i) for i in (1, 2, 3)]
    entries.append((signal(REFS / "song102.ogg"), 202))
    return NasheedIndex.build(entries)


def test_the_index_answers_with_offsets_confidence_and_metadata():
    ix = build_index()
    assert len(ix) == 4
    found = ix.query(signal(CLIPS / "upload_a.mp4"))
    assert sorted(m.metadata for m in found) == [102, 202]
    info = found[0].similarity_info
    assert isinstance(info, NasheedSimilarityInfo)
    assert info.confidence >= 0.99 and info.score > 10 and info.speed == 1.0
    assert 12.5 < info.ref_start_s < 12.7 and info.query_start_s < 0.5
    assert info.ref_sha256 == nasheed.read_fingerprint(base64.b64decode(signal(REFS / "song102.ogg")))[0].sha256
    assert info.pretty_str() == "1.0000@0.13-7.92s=12.61-20.40s" and " " not in info.pretty_str()
    [b] = ix.query(signal(CLIPS / "upload_b.mp3"))
    assert b.metadata == 103
    # Audio that is in no signal finds nothing.
    assert ix.query(signal(CLIPS / "upload_c.opus")) == []


def test_signals_from_nasheed_carry_their_titles_and_metadata():
    pack = nasheed.fingerprint(REFS / "song102.ogg", title="Chant two", meta={"group": "g1", "language": "ar"})
    ix = NasheedIndex.build([(base64.b64encode(pack).decode(), "bank-7")])
    [m] = ix.query(signal(CLIPS / "upload_a.mp4"))
    assert m.metadata == "bank-7"
    assert (m.similarity_info.title, m.similarity_info.meta) == ("Chant two", {"group": "g1", "language": "ar"})


def test_the_index_survives_serialize_and_deserialize():
    ix = build_index()
    buf = io.BytesIO()
    ix.serialize(buf)
    buf.seek(0)
    back = SignalTypeIndex.deserialize(buf)
    assert isinstance(back, NasheedIndex) and len(back) == 4
    clip = signal(CLIPS / "upload_a.mp4")
    assert sorted(m.metadata for m in back.query(clip)) == [102, 202]
    assert back.query(clip)[0].similarity_info == ix.query(clip)[0].similarity_info


def test_an_empty_index_finds_nothing_and_bad_queries_raise():
    empty = NasheedIndex.build([])
    assert empty.query(signal(CLIPS / "upload_a.mp4")) == []
    ix = build_index()
    with pytest.raises(ValueError, match="not base64"):
        ix.query("%%%")
    with pytest.raises(nasheed.NasheedError, match="fingerprint parameters"):
        ix.query(base64.b64encode(wrong_params(base64.b64decode(signal(CLIPS / "upload_a.mp4")))).decode())
    with pytest.raises(nasheed.NasheedError, match="fingerprint parameters"):
        empty.query(base64.b64encode(wrong_params(base64.b64decode(signal(CLIPS / "upload_a.mp4")))).decode())
    with pytest.raises(ValueError, match="empty"):
        ix.add("", 1)
