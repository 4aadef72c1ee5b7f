#!/usr/bin/env bash
# Seeds the fuzz corpora from the committed fixtures (first byte: the hint the target decodes
# with) and the demo pack (raw, and its body without the envelope).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/decode corpus/pack_import
python3 - <<'PY'
import glob, os
hints = [None, "mp3", "mp4", "m4a", "mov", "aac", "ogg", "opus", "webm", "mkv", "flac", "wav", "aiff", "caf"]
for f in glob.glob("../tests/fixtures/*") + glob.glob("../examples/clips/*"):
    ext = f.rsplit(".", 1)[-1].lower()
    i = hints.index(ext) if ext in hints else 0
    data = open(f, "rb").read()[:32768]
    open("corpus/decode/seed_" + os.path.basename(f), "wb").write(bytes([i]) + data)
pack = open("../fingerprints/demo.nshpack", "rb").read()
open("corpus/pack_import/raw_demo", "wb").write(b"\xff" + pack)
rest = pack[12:]
body = rest[1 + rest[0]:-32]  # after the parameter id (one-byte length), before the checksum
open("corpus/pack_import/body_demo", "wb").write(body[:32768])
PY
