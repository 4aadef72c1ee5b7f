"""Type stubs of the compiled module (python/src/lib.rs)."""

import os
from typing import Dict, List, Mapping, Optional, Union

Source = Union[str, "os.PathLike[str]", bytes, bytearray]
"""A recording: a path, or the bytes of a file (any container the engine decodes)."""

PARAMS_ID: str
"""This build's fingerprint-parameter id; packs and indexes must carry the same."""

__version__: str

class NasheedError(Exception):
    """A failure, with the engine's one-line message (naming the input) as its text."""

    kind: str
    """undecodable, unreadable, over_budget, timeout, bad_pack, index, empty_index or internal."""

class Match:
    """One match: the fields of a match in ``nasheed scan --format jsonl``."""

    ref_id: int
    title: str
    ref_path: str
    ref_sha256: str
    meta: Dict[str, str]
    query_start_s: float
    query_end_s: float
    ref_start_s: float
    ref_end_s: float
    speed: float
    pitch_cents: Optional[float]
    score: int
    confidence: float
    evidence_json: Optional[str]
    """The numbers behind the confidence (the ``evidence`` object), as JSON text."""
    @property
    def evidence(self) -> Optional[Dict[str, object]]:
        """The numbers behind the confidence as a dict, or None for an unverified alignment."""
    def to_dict(self) -> Dict[str, object]:
        """The match as the JSON contract's object (``pitch_cents`` and ``evidence`` only when present)."""

class Reference:
    """A stored reference: the fields of ``nasheed list --format json``."""

    id: int
    path: str
    sha256: str
    title: str
    meta: Dict[str, str]
    duration_s: float
    n_hashes: int
    indexed_at: str

class PackEntry:
    """What a fingerprint pack says of one recording it carries."""

    sha256: str
    title: str
    file: str
    duration_s: float
    meta: Dict[str, str]
    n_hashes: int

def fingerprint(
    source: Source,
    title: Optional[str] = None,
    meta: Optional[Mapping[str, str]] = None,
    name: Optional[str] = None,
) -> bytes:
    """A recording fingerprinted as a reference, as a one-track fingerprint pack.

    ``name`` is the file name the pack records (default: the path's); with ``name=""`` and
    ``title=""`` the pack depends on the content alone."""

def read_fingerprint(pack: Union[bytes, bytearray]) -> List[PackEntry]:
    """The recordings a pack carries, after checking it whole; NasheedError if it is not one."""

class Index:
    """An index: an SQLite file (created when missing), a ``postgres://`` URL, a pack or a
    folder of packs (read-only), or ``":memory:"``."""

    def __init__(self, location: Union[str, "os.PathLike[str]"]) -> None: ...
    @property
    def params_id(self) -> str: ...
    def add(
        self,
        source: Source,
        title: Optional[str] = None,
        meta: Optional[Mapping[str, str]] = None,
    ) -> int:
        """Fingerprints and stores a reference; its id (the stored copy's if already there)."""
    def add_fingerprint(
        self,
        pack: Union[bytes, bytearray],
        title: Optional[str] = None,
        meta: Optional[Mapping[str, str]] = None,
    ) -> List[int]:
        """Stores the recordings of a pack; their ids."""
    def scan(self, source: Source, min_confidence: Optional[float] = None) -> List[Match]:
        """The matches of a recording, by start in it."""
    def scan_fingerprint(
        self, pack: Union[bytes, bytearray], min_confidence: Optional[float] = None
    ) -> List[Match]:
        """The matches of a recording known by its one-track pack (no audio)."""
    def references(self) -> List[Reference]:
        """Every reference, by id."""
    def remove(self, id: Union[int, str]) -> bool:
        """Removes a reference by id or SHA-256 (prefix); False when there is none."""
