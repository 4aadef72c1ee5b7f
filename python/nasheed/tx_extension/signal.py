"""``NasheedSignal``: audio fingerprints as a threatexchange signal type."""

import functools
import io
import math
import pathlib
import random
import struct
import typing as t
import wave

from threatexchange.content_type.content_base import ContentType
from threatexchange.content_type.video import VideoContent
from threatexchange.signal_type import signal_base
from threatexchange.signal_type.index import SignalTypeIndex

import nasheed
from nasheed.tx_extension.content import AudioContent
from nasheed.tx_extension.index import (
    NasheedIndex,
    NasheedSimilarityInfo,
    SIGNAL_MIN_CONFIDENCE,
    _one_track,
    decode_signal,
    encode_signal,
)


class NasheedSignal(signal_base.SignalType, signal_base.BytesHasher):
    """
    nasheed's audio fingerprint of a recording: finds a known recording (a chant, a song) in
    short, re-encoded, noisy, sped-up uploads, and says where.

    The signal string is a one-track nasheed fingerprint pack in base64 (the format of
    ``nasheed export``, fingerprints/FORMAT.md: landmark hashes and spectral peaks, no audio).
    It depends on the file's content alone, so the same file hashed anywhere gives the same
    signal, and it can be imported into a nasheed index as it is. Video files are hashed by
    their audio track.
    """

    @classmethod
    def get_content_types(cls) -> t.List[t.Type[ContentType]]:
        return [AudioContent, VideoContent]

    @classmethod
    def get_index_cls(cls) -> t.Type[SignalTypeIndex]:
        return NasheedIndex

    @classmethod
    def validate_signal_str(cls, signal_str: str) -> str:
        pack = decode_signal(signal_str)
        _one_track(pack)
        return encode_signal(pack)

    @classmethod
    def hash_from_file(cls, file: pathlib.Path) -> str:
        # Read where it lies (no copy into memory); title and name left out so that the signal
        # is the content's alone. Raises NasheedError when the file is not audio.
        return encode_signal(nasheed.fingerprint(file, title="", name=""))

    @classmethod
    def hash_from_bytes(cls, bytes_: bytes) -> str:
        return encode_signal(nasheed.fingerprint(bytes_, title="", name=""))

    @classmethod
    def compare_hash(
        cls,
        hash1: str,
        hash2: str,
        min_confidence: float = SIGNAL_MIN_CONFIDENCE,
    ) -> signal_base.SignalComparisonResult:
        """Whether the recording of ``hash2`` contains a stretch of that of ``hash1``."""
        index = nasheed.Index(":memory:")
        index.add_fingerprint(decode_signal(hash1))
        found = index.scan_fingerprint(decode_signal(hash2), min_confidence)
        if not found:
            return signal_base.SignalComparisonResult.from_no_match_only()
        best = max(found, key=lambda m: (m.confidence, m.score))
        return signal_base.SignalComparisonResult(True, NasheedSimilarityInfo.of(best))

    @staticmethod
    def get_examples() -> t.List[str]:
        return [_example_signal()]


@functools.lru_cache(maxsize=1)
def _example_signal() -> str:
    """The signal of a synthetic 12-s melody made here (no file shipped: it stays valid when
    the fingerprint parameters change)."""
    return encode_signal(nasheed.fingerprint(_melody_wav(12.0), title="", name=""))


def _melody_wav(seconds: float, rate: int = 8000, seed: int = 17) -> bytes:
    """A WAV of random notes with harmonics and decaying envelopes (deterministic)."""
    rng = random.Random(seed)
    samples: t.List[float] = []
    while len(samples) < seconds * rate:
        f0 = 110.0 * 2 ** (rng.randrange(36) / 12)
        n = int(rate * rng.choice((0.125, 0.25, 0.375)))
        for i in range(n):
            env = math.exp(-3.0 * i / n)
            x = sum(
                math.sin(2 * math.pi * f0 * h * i / rate) / h for h in (1, 2, 3) if f0 * h < 3800
            )
            samples.append(0.3 * env * x)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(max(-1.0, min(1.0, s)) * 32000)) for s in samples))
    return out.getvalue()
