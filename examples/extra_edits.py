#!/usr/bin/env python3
"""Extra-edits corpus: edits the shared corpus does not have, cut from its own masters.

A check that the engine generalises beyond the classes it was tuned on (docs/EVASION.md,
"Session 5: edits the corpus does not have"). Needs the full shared corpus built first, and sox + ffmpeg.

    python3 examples/extra_edits.py [CORPUS] [OUT]    # defaults below; ~20 s on 2 cores
    cargo run --release --example eval -- OUT

OUT gets queries/, ground_truth.csv (the shared corpus's columns) and refs -> CORPUS/refs.
Positives: 26 classes x 24 clips (5 and 10 s); negatives: 130 held-out clips with the same edits.
"""
import csv, math, os, random, re, subprocess, sys
if len(sys.argv) == 6 and sys.argv[1] == 'mix':
    # mix A B SNR OUT: B under A at SNR dB (RMS), as a job step.
    _, _, a, b, snr, out = sys.argv
    def rms(p):
        s = subprocess.run(['sox', p, '-n', 'stats'], capture_output=True, text=True).stderr
        m = re.search(r'RMS lev dB\s+(-?[\d.]+)', s)
        return float(m.group(1)) if m else -90.0
    g = 10 ** ((rms(a) - rms(b) - float(snr)) / 20)
    subprocess.check_call(['sox', '-R', '-q', '-m', '-v', '1', a, '-v', '%.6f' % g, b, '-b', '16', out, 'gain', '-n', '-1'])
    sys.exit(0)
C = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser('~/.cache/nasheed-corpus/out-full')
OUT = sys.argv[2] if len(sys.argv) > 2 else '/tmp/xcorp'
os.makedirs(OUT + '/queries', exist_ok=True)
os.makedirs(OUT + '/.work', exist_ok=True)
if not os.path.exists(OUT + '/refs'):
    os.symlink(C + '/refs', OUT + '/refs')
gt = list(csv.DictReader(open(C + '/ground_truth.csv')))
# The master of each reference and held-out track, from the corpus's jobs: 44.1 kHz WAVs whose
# time matches the references' (a positive's ground-truth offset is its trim / 44100).
source = dict(re.findall(r"# (q\d+) \S+\nsox -R -q '([^']+)'", open(C + '/jobs.sh').read()))
master = {}
heldout = set()
for g in gt:
    src = source.get(os.path.basename(g['query_file']).split('.')[0])
    if src and g['ref_file']:
        master[g['ref_file']] = src
    elif src and g['origin'].startswith('heldout:'):
        heldout.add(src)
heldout = sorted(heldout)
def dur(p):
    return float(subprocess.check_output(['soxi', '-D', p]).decode())
durs = {p: dur(p) for p in list(master.values()) + heldout}
# class: (reference seconds per upload second, sox effect, music mixed under it at this SNR, format)
CLASSES = {
    'pitch_+200c': (1.0, 'pitch 200', None, 'wav'),
    'pitch_-200c': (1.0, 'pitch -200', None, 'wav'),
    'pitch_+50c': (1.0, 'pitch 50', None, 'wav'),
    'tempo_0.95': (0.95, 'tempo -m 0.95', None, 'wav'),
    'tempo_1.05': (1.05, 'tempo -m 1.05', None, 'wav'),
    'speed_0.93': (0.93, 'speed 0.93', None, 'wav'),
    'speed_1.08': (1.08, 'speed 1.08', None, 'wav'),
    'tempo1.05_pitch+50': (1.05, 'tempo -m 1.05 pitch 50', None, 'wav'),
    'tempo0.95_pitch-100': (0.95, 'tempo -m 0.95 pitch -100', None, 'wav'),
    'tempo1.08_pitch+200': (1.08, 'tempo -m 1.08 pitch 200', None, 'wav'),
    'music_0db': (1.0, '', 0, 'wav'),
    'music_6db': (1.0, '', 6, 'wav'),
    'lowpass2k_mp3_32k': (1.0, 'lowpass 2000', None, 'mp3'),
    'speed1.05_opus24k': (1.05, 'speed 1.05', None, 'opus'),
    # Short-video edits past the old ±12 % / ±200 c range: "nightcore" / "sped up" 1.15-1.25,
    # "slowed + reverb" 0.80-0.85, large pitch shifts, tempo and pitch moved together.
    'speed_0.80': (0.80, 'speed 0.80', None, 'wav'),
    'speed_0.85': (0.85, 'speed 0.85', None, 'wav'),
    'speed_1.15': (1.15, 'speed 1.15', None, 'wav'),
    'speed_1.20': (1.20, 'speed 1.20', None, 'wav'),
    'speed_1.25': (1.25, 'speed 1.25', None, 'wav'),
    'tempo_0.80': (0.80, 'tempo -m 0.80', None, 'wav'),
    'tempo_1.25': (1.25, 'tempo -m 1.25', None, 'wav'),
    'pitch_+300c': (1.0, 'pitch 300', None, 'wav'),
    'pitch_-300c': (1.0, 'pitch -300', None, 'wav'),
    'tempo1.15_pitch+200': (1.15, 'tempo -m 1.15 pitch 200', None, 'wav'),
    'slowed0.85_reverb': (0.85, 'speed 0.85 reverb 60', None, 'wav'),
    'speed1.25_aac_mp4': (1.25, 'speed 1.25', None, 'mp4'),
}
# The upload's pitch shift in cents, where the edit moved pitch (the harness checks pitch_cents).
def cents(cls):
    m = re.search(r'pitch_?([+-]\d+)', cls)
    if m:
        return int(m.group(1))
    m = re.match(r'(?:speed|slowed)_?([\d.]+)', cls)
    return round(1200 * math.log2(float(m.group(1)))) if m else 0
rng = random.Random(77)
NNEG = 5 * len(CLASSES)
refs = sorted(master)
rows = []; cmds = []
n = 0
def cut(src, off, n_in, fx, n_out, out):
    # n_in samples of src from off seconds, through fx, exactly n_out samples of 44.1 kHz stereo.
    return "sox -R -q '%s' -b 16 %s trim %ds %ds %s rate -v 44100 channels 2 trim 0 %ds pad 0 %ds trim 0 %ds" % (src, out, int(off * 44100), n_in, fx, n_out, n_out, n_out)
def make(src, off, L, cls, name):
    scale, fx, snr, enc = CLASSES[cls]
    w = OUT + '/.work/' + name
    ol = int(L * 44100)
    c = [cut(src, off, int(round(L * scale * 44100)), fx, ol, w + '.a.wav')]
    final = w + '.a.wav'
    if snr is not None:
        h = rng.choice([x for x in heldout if x != src])
        ho = rng.uniform(5, durs[h] - L - 5)
        c.append(cut(h, ho, ol, '', ol, w + '.b.wav'))
        c.append("python3 '%s' mix %s.a.wav %s.b.wav %s %s.m.wav" % (os.path.abspath(__file__), w, w, snr, w))
        final = w + '.m.wav'
    dst = OUT + '/queries/' + name
    if enc == 'wav':
        c.append('mv %s %s.wav' % (final, dst)); dst += '.wav'
    elif enc == 'mp3':
        c.append('ffmpeg -nostdin -v error -y -i %s -c:a libmp3lame -b:a 32k %s.mp3' % (final, dst)); dst += '.mp3'
    elif enc == 'mp4':
        c.append('ffmpeg -nostdin -v error -y -i %s -c:a aac -b:a 48k %s.mp4' % (final, dst)); dst += '.mp4'
    else:
        c.append('ffmpeg -nostdin -v error -y -i %s -c:a libopus -b:a 24k %s.opus' % (final, dst)); dst += '.opus'
    c.append('rm -f %s.*.wav' % w)
    cmds.append(' && '.join(c))
    return 'queries/' + os.path.basename(dst)
for cls, (scale, fx, snr, enc) in CLASSES.items():
    for i in range(24):
        L = 5 if i % 2 else 10
        r = rng.choice(refs); src = master[r]
        off = rng.uniform(2, durs[src] - L * scale - 2)
        n += 1; name = 'x%04d' % n
        q = make(src, off, L, cls, name)
        rows.append([q, r, '%.3f' % off, cls, L, '%.2f' % scale, cents(cls), '', '', ''])
# negatives: held-out music with the same edits
for i in range(NNEG):
    cls = rng.choice(list(CLASSES)); L = rng.choice([5, 10])
    scale = CLASSES[cls][0]
    src = rng.choice(heldout); off = rng.uniform(2, durs[src] - L * scale - 2)
    n += 1; name = 'x%04d' % n
    q = make(src, off, L, cls, name)
    rows.append([q, '', '', cls, L, '%.2f' % scale, '', '', '', 'heldout'])
rng.shuffle(rows)
with open(OUT + '/ground_truth.csv', 'w', newline='') as f:
    wr = csv.writer(f)
    wr.writerow(['query_file', 'ref_file', 'ref_offset_s', 'distortion', 'clip_len_s', 'time_scale', 'pitch_cents', 'snr_db', 'ref_id', 'origin'])
    wr.writerows(rows)
open(OUT + '/jobs.sh', 'w').write('\n'.join(cmds) + '\n')
subprocess.run('tr "\\n" "\\0" < %s/jobs.sh | xargs -0 -P%d -I{} sh -c "{}" 2>/dev/null' % (OUT, os.cpu_count() or 2), shell=True, check=True)
print(len(rows), 'queries in', OUT, '(%d held-out masters, %d refs)' % (len(heldout), len(refs)))
