#!/usr/bin/env python3
"""Key-occupancy statistics of a nasheed SQLite index (read-only).

    python3 examples/occupancy.py INDEX.db [--tracks-like PATTERN]

For the landmark-pair hashes and the triplet keys stored (each counted over the `hashes` rows
and the posting blobs, SQLite schema 2 to 4): the number of distinct keys, the mean and median
postings per key, and the same weighted by postings (the stored count of the key of a random
stored posting: what a query cut from the indexed audio meets on each lookup), with its 90th
and 99th percentiles, and the share of postings in keys stored more than 50 and 300 times (the
engine skips keys above 300 at query time; schema 4 keeps a triplet key past 300 as a count).
`--tracks-like` restricts the count to tracks whose path matches a SQL LIKE pattern (e.g.
'reversed/%'), to compare kinds of distractor held in one index; it needs postings with their
tracks, so stopped triplet keys (counts only) are left out of it.
"""
import collections
import sqlite3
import sys

TRIPLET_KEYS = 1 << 32
BAND_BITS = 6
STOPPED = 1 << BAND_BITS


def varint(data, i):
    """(value, next index) of the LEB128 varint at data[i]."""
    v, shift = 0, 0
    while True:
        b = data[i]
        i += 1
        v |= (b & 0x7F) << shift
        if b < 0x80:
            return v, i
        shift += 7


def postings(data):
    """(track, value) of a flat posting list (`encode_postings`)."""
    n, i = varint(data, 0)
    track, t = 0, 0
    for _ in range(n):
        dtrack, i = varint(data, i)
        f, i = varint(data, i)
        if dtrack:
            track += dtrack
            t = f
        else:
            t += f
        yield track, t


def count(data, wanted):
    """How many postings of a flat posting list belong to `wanted` (None: all, read off its head)."""
    if wanted is None:
        return varint(data, 0)[0]
    return sum(1 for tr, _ in postings(data) if tr in wanted)


def blob_keys(hash_, data, wanted):
    """(key, count) per key of one blob; `wanted` (a set of track ids or None) filters tracks."""
    if hash_ < TRIPLET_KEYS:
        yield ("pair", hash_), count(data, wanted)
        return
    row = hash_ - TRIPLET_KEYS
    if data[0] != 0:  # a flat triplet row (schema 2): the band is in each value
        per_band = collections.Counter(
            (v >> 16) & (STOPPED - 1) for tr, v in postings(data) if wanted is None or tr in wanted
        )
        for band, n in per_band.items():
            yield ("triplet", row << BAND_BITS | band), n
        return
    i = 1
    while i < len(data):
        band, i = varint(data, i)
        if band & STOPPED:
            n, i = varint(data, i)
            if wanted is None:
                yield ("triplet", row << BAND_BITS | (band - STOPPED)), n
            continue
        length, i = varint(data, i)
        section = data[i : i + length]
        i += length
        yield ("triplet", row << BAND_BITS | band), count(section, wanted)


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    db, like = args[0], None
    if "--tracks-like" in args:
        like = args[args.index("--tracks-like") + 1]
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    where, params = ("", ()) if like is None else (" WHERE path LIKE ?", (like,))
    ids = [r[0] for r in con.execute("SELECT id FROM tracks" + where, params)]
    wanted = None if like is None else set(ids)
    (hours,) = con.execute(
        "SELECT coalesce(sum(duration_s), 0) / 3600 FROM tracks" + where, params
    ).fetchone()
    counts = collections.Counter()
    for hash_, track, t in con.execute("SELECT hash, track, t FROM hashes"):
        if wanted is None or track in wanted:
            key = ("pair", hash_) if hash_ < TRIPLET_KEYS else (
                "triplet",
                (hash_ - TRIPLET_KEYS) << BAND_BITS | (t >> 16) & (STOPPED - 1),
            )
            counts[key] += 1
    has_blobs = con.execute(
        "SELECT count(*) FROM sqlite_master WHERE name = 'postings'"
    ).fetchone()[0]
    if has_blobs:
        for hash_, data in con.execute("SELECT hash, data FROM postings"):
            for key, n in blob_keys(hash_, data, wanted):
                counts[key] += n
    print(f"{db}{' (' + like + ')' if like else ''}: {len(ids)} tracks, {hours:.1f} h")
    for kind in ("pair", "triplet"):
        report(kind, sorted(n for (k, _), n in counts.items() if k == kind and n > 0))


def report(kind, counts):
    if not counts:
        print(f"  {kind}s: none stored")
        return
    total = sum(counts)

    def weighted(q):
        # The count c such that a share q of all postings lies in keys stored at most c times.
        acc = 0
        for c in counts:
            acc += c
            if acc >= q * total:
                return c
        return counts[-1]

    over = lambda n: sum(c for c in counts if c > n) / total
    print(
        f"  {kind}s: {total} postings, {len(counts)} distinct keys; per key mean "
        f"{total / len(counts):.1f}, median {counts[len(counts) // 2]}, max {counts[-1]}; "
        f"met by a random posting: median {weighted(0.5)}, p90 {weighted(0.9)}, "
        f"p99 {weighted(0.99)}; postings in keys > 50: {over(50):.3f}, > 300: {over(300):.3f}"
    )


if __name__ == "__main__":
    main()
