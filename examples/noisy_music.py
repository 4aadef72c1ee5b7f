#!/usr/bin/env python3
"""Noise on other music: the shared corpus's noise and voice-over classes, on music never tuned on.

The shared corpus's noise classes are cut from the four packages the parameters were tuned on.
This indexes other music instead (e.g. the game-music packages of `other_music.py`): it picks
references from MUSIC_DIR, cuts positives from them and negatives from the rest, under white and
pink noise at 0 and 5 dB SNR, speech at 0 dB and the two combined classes, with the shared
corpus's noise and speech beds (docs/EVASION.md, session 17). Needs sox, ffmpeg and the shared
corpus built first (for its beds).

    python3 examples/noisy_music.py MUSIC_DIR [OUT]   # ~2 min on 2 cores
    cargo run --release --example eval -- OUT         # indexes OUT/refs, scans OUT/queries

OUT gets refs/ (links to the chosen files), queries/ and ground_truth.csv (the shared corpus's
columns). Positives: 7 classes x 2 lengths (10, 20 s) x 8 clips; negatives: 4 per class and
length, from files that are not references.
"""
import concurrent.futures
import csv
import os
import random
import re
import subprocess
import sys

if len(sys.argv) < 2:
    sys.exit(__doc__)
MUSIC = sys.argv[1]
OUT = sys.argv[2] if len(sys.argv) > 2 else '/tmp/noisy-music'
BEDS = os.path.expanduser('~/.cache/nasheed-corpus/debs/beds')
REFS, PER_CLASS, NEGATIVES = 48, 8, 4
# class: (sox effect on the music, reference seconds per upload second, pitch in cents, bed,
# SNR in dB, format); the shared corpus's classes of the same names.
CLASSES = {
    'white_snr0': ([], 1.0, 0.0, 'white_noise', 0, 'wav'),
    'pink_snr0': ([], 1.0, 0.0, 'pink_noise', 0, 'wav'),
    'white_snr5': ([], 1.0, 0.0, 'white_noise', 5, 'wav'),
    'pink_snr5': ([], 1.0, 0.0, 'pink_noise', 5, 'wav'),
    'voice_en_tts_0db': ([], 1.0, 0.0, 'tts_en', 0, 'wav'),
    'combo_pitch+100_voicear_mp3_64k': (['pitch', '100'], 1.0, 100.0, 'tts_ar', 0, 'mp3'),
    'combo_speed1.05_pink10_aac64k_mp4': (['speed', '1.05'], 1.05, 84.5, 'pink_noise', 10, 'mp4'),
}


def seconds(path):
    out = subprocess.run(['soxi', '-D', path], capture_output=True, text=True).stdout.strip()
    try:
        return float(out)
    except ValueError:
        return 0.0  # not something sox reads


def rms_db(path):
    s = subprocess.run(['sox', path, '-n', 'stats'], capture_output=True, text=True).stderr
    m = re.search(r'RMS lev dB\s+(-?[\d.]+)', s)
    return float(m.group(1)) if m and m.group(1) != '-inf' else -90.0


def make(job):
    """Cuts, edits, mixes and encodes one clip."""
    src, start, length, cls, bed_start, name = job
    fx, scale, _, bed, snr, fmt = CLASSES[cls]
    work = f'{OUT}/.work/{name}'
    a, b, m = work + '.a.wav', work + '.b.wav', work + '.m.wav'
    n = length * 44100
    subprocess.run(['sox', '-R', '-q', src, '-b', '16', a, 'trim', f'{start:.3f}',
                    f'{length * scale + 0.1:.3f}'] + fx +
                   ['rate', '-v', '44100', 'channels', '2', 'trim', '0', f'{n}s', 'pad', '0',
                    f'{n}s', 'trim', '0', f'{n}s'], check=True)
    subprocess.run(['sox', '-R', '-q', f'{BEDS}/{bed}.wav', b, 'trim', f'{bed_start:.3f}',
                    str(length), 'rate', '-v', '44100', 'channels', '2'], check=True)
    gain = 10 ** ((rms_db(a) - rms_db(b) - snr) / 20)
    subprocess.run(['sox', '-R', '-q', '-m', '-v', '1', a, '-v', f'{gain:.6f}', b, '-b', '16', m,
                    'gain', '-n', '-1'], check=True)
    out = f'{OUT}/queries/{name}.{fmt}'
    if fmt == 'wav':
        os.replace(m, out)
    elif fmt == 'mp3':
        subprocess.run(['ffmpeg', '-nostdin', '-v', 'error', '-y', '-i', m, '-c:a', 'libmp3lame',
                        '-b:a', '64k', out], check=True)
    else:
        subprocess.run(['ffmpeg', '-nostdin', '-v', 'error', '-y', '-i', m, '-c:a', 'aac',
                        '-b:a', '64k', '-vn', out], check=True)
    for p in (a, b, m):
        if os.path.exists(p):
            os.remove(p)


files = sorted(
    os.path.join(d, f)
    for d, _, fs in os.walk(MUSIC)
    for f in fs
    if f.lower().endswith(('.wav', '.flac', '.ogg', '.mp3', '.opus', '.m4a'))
)
rng = random.Random(17)
rng.shuffle(files)
# One reference per source folder at most, 90 s or longer; negatives from the other folders.
refs, used = [], set()
for f in files:
    folder = os.path.relpath(f, MUSIC).split(os.sep)[0]
    if len(refs) < REFS and folder not in used and seconds(f) >= 90:
        refs.append(f)
        used.add(folder)
others = [f for f in files if os.path.relpath(f, MUSIC).split(os.sep)[0] not in used]
os.makedirs(OUT + '/queries', exist_ok=True)
os.makedirs(OUT + '/refs', exist_ok=True)
os.makedirs(OUT + '/.work', exist_ok=True)
names = []
for i, f in enumerate(refs, 1):
    stem = re.sub(r'[^A-Za-z0-9]+', '_', os.path.splitext(os.path.basename(f))[0])[-40:]
    names.append(f'r{i:03d}_{stem}{os.path.splitext(f)[1].lower()}')
    link = f'{OUT}/refs/{names[-1]}'
    if not os.path.lexists(link):
        os.symlink(os.path.abspath(f), link)
beds = {c[3]: seconds(f'{BEDS}/{c[3]}.wav') for c in CLASSES.values()}
jobs, rows = [], []
for cls, (_, scale, cents, bed, snr, fmt) in CLASSES.items():
    for length in (10, 20):
        for k in range(PER_CLASS + NEGATIVES):
            positive = k < PER_CLASS
            pool = range(len(refs)) if positive else others
            pick = rng.choice(pool)
            src = refs[pick] if positive else pick
            d = seconds(src)
            if d < length * scale + 2:
                continue
            start = rng.uniform(0, d - length * scale - 1)
            name = f'{"p" if positive else "n"}{len(jobs):04d}_{cls}_{length}s'
            jobs.append((src, start, length, cls, rng.uniform(0, beds[bed] - length - 1), name))
            rows.append([f'queries/{name}.{fmt}',
                         f'refs/{names[pick]}' if positive else '',
                         f'{start:.3f}' if positive else '', cls, length,
                         f'{scale:.2f}' if positive else '', f'{cents:.1f}' if positive else '',
                         snr, f'r{pick + 1:03d}' if positive else '',
                         ('' if positive else 'other:') + os.path.relpath(src, MUSIC)])
with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as pool:
    list(pool.map(make, jobs))
with open(OUT + '/ground_truth.csv', 'w', newline='') as fh:
    w = csv.writer(fh)
    w.writerow(['query_file', 'ref_file', 'ref_offset_s', 'distortion', 'clip_len_s', 'time_scale',
                'pitch_cents', 'snr_db', 'ref_id', 'origin'])
    w.writerows(rows)
print(f'{len(refs)} references, {sum(1 for r in rows if r[1])} positives, '
      f'{sum(1 for r in rows if not r[1])} negatives in {OUT}')
