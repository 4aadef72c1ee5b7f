"""``NasheedIndex``: signals in a private in-memory nasheed index, queried by signal."""

import base64
import binascii
import typing as t
from dataclasses import dataclass, field

from threatexchange.signal_type.index import (
    IndexMatch,
    SignalSimilarityInfo,
    SignalTypeIndex,
    T as IndexT,
)

import nasheed

# Matches less confident than this are not reported. Stricter than the engine's 0.9 for
# uploads: a signal carries the sparse reference-side fingerprint of the upload, not the dense
# one a scan of the audio makes, and the confidence is calibrated on the dense one. On the
# evaluation corpus (56 references, 937 clips of 5, 10 and 20 s) 0.99 reports no wrong match,
# where 0.9 reported one; 10-s clips are found at recall 0.93 (a scan of the audio: 0.96; see
# python/README.md).
SIGNAL_MIN_CONFIDENCE = 0.99


def decode_signal(signal_str: str) -> bytes:
    """The pack a signal string carries (strict base64); ValueError if it is not base64."""
    text = signal_str.strip()
    if not text:
        raise ValueError("empty hash")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError(f"nasheed signal: not base64 ({e})") from None


def encode_signal(pack: bytes) -> str:
    """The signal string of a pack: standard, padded base64 on one line."""
    return base64.b64encode(pack).decode("ascii")


@dataclass
class NasheedSimilarityInfo(SignalSimilarityInfo):
    """How a query matched a signal: the best match's fields (the JSONL contract's names)."""

    confidence: float
    score: int
    query_start_s: float
    query_end_s: float
    ref_start_s: float
    ref_end_s: float
    speed: float
    pitch_cents: t.Optional[float]
    ref_sha256: str
    title: str
    meta: t.Dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, m: nasheed.Match) -> "NasheedSimilarityInfo":
        """The similarity a nasheed match reports."""
        return cls(
            confidence=m.confidence,
            score=m.score,
            query_start_s=m.query_start_s,
            query_end_s=m.query_end_s,
            ref_start_s=m.ref_start_s,
            ref_end_s=m.ref_end_s,
            speed=m.speed,
            pitch_cents=m.pitch_cents,
            ref_sha256=m.ref_sha256,
            title=m.title,
            meta=m.meta,
        )

    def pretty_str(self) -> str:
        # No whitespace (the CLI prints it as one field): confidence@upload=reference stretch.
        return (
            f"{self.confidence:.4f}@{self.query_start_s:.2f}-{self.query_end_s:.2f}s"
            f"={self.ref_start_s:.2f}-{self.ref_end_s:.2f}s"
        )

    def __lt__(self, other: t.Any) -> bool:
        # Closer is more confident (then more aligned hashes).
        if isinstance(other, NasheedSimilarityInfo):
            return (self.confidence, self.score) > (other.confidence, other.score)
        return NotImplemented


class NasheedIndex(SignalTypeIndex[IndexT]):
    """
    Signals (one-track fingerprint packs) in a private in-memory nasheed index.

    ``query(signal)`` matches the recording the signal was made from against every signal
    added, and answers one ``IndexMatch`` per entry of each reference found, carrying the best
    match's offsets, confidence and the reference's title and metadata. Signals of the same
    recording (same SHA-256) share one reference and return all their entries. Pickled as the
    signals and entries; the nasheed index is rebuilt on load.
    """

    def __init__(self, min_confidence: float = SIGNAL_MIN_CONFIDENCE) -> None:
        super().__init__()
        self.min_confidence = min_confidence
        self._index = nasheed.Index(":memory:")
        # Reference SHA-256 → (its pack, the entries added with it).
        self._refs: t.Dict[str, t.Tuple[bytes, t.List[IndexT]]] = {}

    @classmethod
    def build(
        cls,
        entries: t.Iterable[t.Tuple[str, IndexT]],
        min_confidence: float = SIGNAL_MIN_CONFIDENCE,
    ) -> "NasheedIndex[IndexT]":
        ret = cls(min_confidence)
        ret.add_all(entries)
        return ret

    def add(self, signal_str: str, entry: IndexT) -> None:
        pack = decode_signal(signal_str)
        [one] = _one_track(pack)
        known = self._refs.get(one.sha256)
        if known is None:
            self._index.add_fingerprint(pack)
            self._refs[one.sha256] = (pack, [entry])
        else:
            known[1].append(entry)

    def query(self, query: str) -> t.List[IndexMatch[IndexT]]:
        pack = decode_signal(query)
        if not self._refs:
            # Nothing to find (nasheed refuses to scan an empty index: it would say "clean").
            _one_track(pack)
            return []
        best: t.Dict[str, nasheed.Match] = {}
        for m in self._index.scan_fingerprint(pack, self.min_confidence):
            held = best.get(m.ref_sha256)
            if held is None or (m.confidence, m.score) > (held.confidence, held.score):
                best[m.ref_sha256] = m
        ret: t.List[IndexMatch[IndexT]] = []
        for sha, m in best.items():
            info = NasheedSimilarityInfo.of(m)
            for entry in self._refs.get(sha, (b"", []))[1]:
                ret.append(IndexMatch(info, entry))
        return ret

    def __len__(self) -> int:
        return sum(len(entries) for _, entries in self._refs.values())

    def __getstate__(self) -> t.Dict[str, t.Any]:
        # The native index does not pickle; the signals rebuild it.
        return {
            "min_confidence": self.min_confidence,
            "refs": [(pack, entries) for pack, entries in self._refs.values()],
        }

    def __setstate__(self, state: t.Dict[str, t.Any]) -> None:
        self.__init__(state["min_confidence"])  # type: ignore[misc]
        for pack, entries in state["refs"]:
            [one] = _one_track(pack)
            self._index.add_fingerprint(pack)
            self._refs[one.sha256] = (pack, list(entries))


def _one_track(pack: bytes) -> t.List[nasheed.PackEntry]:
    """The one recording a signal's pack carries; NasheedError or ValueError otherwise."""
    entries = nasheed.read_fingerprint(pack)
    if len(entries) != 1:
        raise ValueError(
            f"nasheed signal: expected a one-track pack, this one has {len(entries)} tracks"
        )
    return entries
