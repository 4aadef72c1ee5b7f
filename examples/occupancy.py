#!/usr/bin/env python3
"""Hash-occupancy statistics of a nasheed SQLite index (read-only).

    python3 examples/occupancy.py INDEX.db [--tracks-like PATTERN]

For the distinct hashes stored: the mean and median number of rows per hash, and the same
weighted by rows (the stored count of the hash of a random stored landmark: what a query cut
from the indexed audio meets on each lookup), with its 90th and 99th percentiles, and the share
of rows in hashes stored more than 50 and 1000 times (the engine skips hashes above 1000 rows
at query time). `--tracks-like` restricts the count to tracks whose path matches a SQL LIKE
pattern (e.g. 'reversed/%'), to compare kinds of distractor held in one index.
"""
import sqlite3
import sys


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    db, like = args[0], None
    if "--tracks-like" in args:
        like = args[args.index("--tracks-like") + 1]
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    if like is None:
        rows = con.execute("SELECT hash, count(*) FROM hashes GROUP BY hash")
        (tracks,) = con.execute("SELECT count(*) FROM tracks").fetchone()
        (hours,) = con.execute("SELECT coalesce(sum(duration_s), 0) / 3600 FROM tracks").fetchone()
    else:
        rows = con.execute(
            "SELECT hash, count(*) FROM hashes WHERE track IN "
            "(SELECT id FROM tracks WHERE path LIKE ?) GROUP BY hash",
            (like,),
        )
        tracks, hours = con.execute(
            "SELECT count(*), coalesce(sum(duration_s), 0) / 3600 FROM tracks WHERE path LIKE ?",
            (like,),
        ).fetchone()
    counts = sorted(c for _, c in rows)
    if not counts:
        sys.exit(f"{db}: no hashes stored")
    total = sum(counts)

    def weighted(q):
        # The count c such that a share q of all rows lies in hashes stored at most c times.
        acc = 0
        for c in counts:
            acc += c
            if acc >= q * total:
                return c
        return counts[-1]

    over = lambda n: sum(c for c in counts if c > n) / total
    print(
        f"{db}{' (' + like + ')' if like else ''}: {tracks} tracks, {hours:.1f} h, "
        f"{total} rows, {len(counts)} distinct hashes ({len(counts) / 2**23:.3f} of the 2^23 space)\n"
        f"  rows per distinct hash: mean {total / len(counts):.1f}, median {counts[len(counts) // 2]}, "
        f"max {counts[-1]}\n"
        f"  stored count met by a random landmark: median {weighted(0.5)}, "
        f"p90 {weighted(0.9)}, p99 {weighted(0.99)}\n"
        f"  rows in hashes stored > 50 times: {over(50):.3f}; > 1000 times: {over(1000):.3f}"
    )


if __name__ == "__main__":
    main()
