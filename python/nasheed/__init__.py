"""nasheed: find known recordings in short, re-encoded, distorted uploads.

The Python face of the Rust engine: ``fingerprint`` turns a recording into a one-track
fingerprint pack (bytes, no audio), ``Index`` stores references and scans recordings, and
``Match`` carries the fields of ``nasheed scan --format jsonl``. Failures raise
``NasheedError`` with the engine's one-line message and a ``kind``. ``nasheed.tx_extension``
is the signal type for python-threatexchange and HMA (needs the ``threatexchange`` extra).
"""

from nasheed._nasheed import (
    PARAMS_ID,
    Index,
    Match,
    NasheedError,
    PackEntry,
    Reference,
    __version__,
    fingerprint,
    read_fingerprint,
)

__all__ = [
    "PARAMS_ID",
    "Index",
    "Match",
    "NasheedError",
    "PackEntry",
    "Reference",
    "__version__",
    "fingerprint",
    "read_fingerprint",
]
