#!/usr/bin/env python3
"""Other-music negatives: edited clips of music that holds none of the references' audio.

The shared corpus draws its negatives from four packages' held-out tracks, a few of which share
loops with references. This cuts one clip per file of any other music (e.g. game-music packages
outside the corpus) under the short-video edits, for a false-positive count on music the engine
was never tuned on (docs/EVASION.md, session 15). Needs sox and the shared corpus built first.

    python3 examples/other_music.py MUSIC_DIR [CORPUS] [OUT]   # ~1 min for 1000 files on 2 cores
    cargo run --release --example eval -- OUT                  # every clip is a negative

Scanning whole files is the other half of the check (a long upload is searched more widely):
    nasheed --db refs.db scan --format jsonl MUSIC_DIR

OUT gets queries/, ground_truth.csv (the shared corpus's columns, no reference) and refs ->
CORPUS/refs. A file that truly reuses a reference's recording will match: look before counting.
"""
import concurrent.futures
import csv
import os
import random
import subprocess
import sys

if len(sys.argv) < 2:
    sys.exit(__doc__)
MUSIC = sys.argv[1]
CORPUS = sys.argv[2] if len(sys.argv) > 2 else os.path.expanduser('~/.cache/nasheed-corpus/out-full')
OUT = sys.argv[3] if len(sys.argv) > 3 else '/tmp/other-music'
EDITS = [
    ('none', []),
    ('speed1.25', ['speed', '1.25']),
    ('speed0.8', ['speed', '0.8']),
    ('tempo1.2', ['tempo', '1.2']),
    ('tempo0.85', ['tempo', '0.85']),
    ('pitch+300', ['pitch', '300']),
    ('pitch-300', ['pitch', '-300']),
    ('slowed0.85_reverb', ['speed', '0.85', 'reverb', '50']),
    ('tempo1.15_pitch+200', ['tempo', '1.15', 'pitch', '200']),
]
os.makedirs(OUT + '/queries', exist_ok=True)
if not os.path.exists(OUT + '/refs'):
    os.symlink(CORPUS + '/refs', OUT + '/refs')
files = sorted(
    os.path.join(d, f)
    for d, _, fs in os.walk(MUSIC)
    for f in fs
    if f.lower().endswith(('.wav', '.flac', '.ogg', '.mp3', '.opus', '.m4a'))
)
rng = random.Random(15)
jobs, rows = [], []
for i, f in enumerate(files):
    out = subprocess.run(['soxi', '-D', f], capture_output=True, text=True).stdout.strip()
    try:
        duration = float(out)
    except ValueError:
        continue  # not something sox reads
    length = rng.choice([3, 5, 10, 20])
    if duration < length + 2:
        continue
    start = rng.uniform(0, duration - length - 1)
    name, effects = rng.choice(EDITS)
    query = f'queries/n{i:05d}_{name}_{length}s.wav'
    jobs.append(['sox', '-R', '-q', f, f'{OUT}/{query}', 'trim', f'{start:.2f}', str(length)] + effects)
    rows.append([query, '', '', name, length, '', '', '', '', 'other:' + os.path.relpath(f, MUSIC)])
with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as pool:
    list(pool.map(lambda job: subprocess.run(job, check=True), jobs))
with open(OUT + '/ground_truth.csv', 'w', newline='') as fh:
    w = csv.writer(fh)
    w.writerow(['query_file', 'ref_file', 'ref_offset_s', 'distortion', 'clip_len_s', 'time_scale',
                'pitch_cents', 'snr_db', 'ref_id', 'origin'])
    w.writerows(rows)
print(f'{len(rows)} negatives in {OUT}')
