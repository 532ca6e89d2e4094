#!/usr/bin/env python3
"""Faults against a run directory: SIGINT and SIGKILL at random points, a full disk
(small tmpfs mounts), a read-only --out. Runs graphs/ce.lua on a Fashion-MNIST subset
(it writes metrics.jsonl each tick, .npy files, a checkpoint, result-ce.json) and checks
that the run directory never lies:

  * exit status 0 only when summary.json says "ok", and a write failure is never 0;
  * summary.json, when present, parses and says "ok" only for a run that exited 0 —
    a killed run says "running", an interrupted or failed one "failed";
  * metrics.jsonl has no torn line; every .npy, .safetensors and result-*.json present
    is whole (header and size agree, JSON parses);
  * a write failure's message names the file.

Usage: faults.py KDFLOW SRCDIR [--trials N] [--seed S] [--table]
  --trials  random kill points per signal (default 2)
  --table   print a markdown table of what survived (for docs/results.md)
Exit 0 when every check holds, 1 otherwise, 77 without the dataset. The full-disk and
read-only cases need to mount a tmpfs (root); without, they are reported as skipped.
"""
import json, os, random, signal, struct, subprocess, sys, tempfile, time

args = sys.argv[1:]
kdflow, src = args[0], args[1]
trials = int(args[args.index('--trials') + 1]) if '--trials' in args else 2
seed = int(args[args.index('--seed') + 1]) if '--seed' in args else 1
table = '--table' in args
rng = random.Random(seed)
DATASET = '/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz'
if not os.path.exists(DATASET):
    print('skip: Debian\'s dataset-fashion-mnist is not installed')
    sys.exit(77)

GRAPH = os.path.join(src, 'graphs', 'ce.lua')
SETS = ['--set', 'subset=600', '--set', 'test_subset=200', '--set', 'epochs=8']
failures = []
rows = []


def fail(case, msg):
    failures.append(f'{case}: {msg}')
    print(f'FAIL {case}: {msg}')


def start(out, extra=()):
    return subprocess.Popen([kdflow, 'run', GRAPH, '--quiet', '--threads', '1', '--out', out,
                             *SETS, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def whole_npy(path):
    with open(path, 'rb') as f:
        data = f.read()
    if data[:6] != b'\x93NUMPY':
        return False
    hl = struct.unpack('<H', data[8:10])[0] if data[6] == 1 else struct.unpack('<I', data[8:12])[0]
    start = (10 if data[6] == 1 else 12) + hl
    header = data[start - hl:start].decode('latin1')
    shape = header.split("'shape': (")[1].split(')')[0]
    n = 1
    for d in shape.split(','):
        if d.strip():
            n *= int(d)
    size = int(header.split("'descr': '")[1][2:].split("'")[0])
    return len(data) - start == n * size


def whole_safetensors(path):
    with open(path, 'rb') as f:
        data = f.read()
    if len(data) < 8:
        return False
    hl = struct.unpack('<Q', data[:8])[0]
    if 8 + hl > len(data):
        return False
    header = json.loads(data[8:8 + hl])
    end = max((v['data_offsets'][1] for k, v in header.items() if k != '__metadata__'),
              default=0)
    return 8 + hl + end == len(data)


def inspect(case, out, status, stderr, expect):
    """Checks the directory; returns a row of what survived."""
    files = sorted(os.listdir(out)) if os.path.isdir(out) else []
    visible = [f for f in files if not f.startswith('.')]
    summary = None
    if 'summary.json' in files:
        try:
            with open(os.path.join(out, 'summary.json')) as f:
                summary = json.load(f)
        except ValueError as e:
            fail(case, f'summary.json does not parse: {e}')
    sstatus = summary.get('status') if summary else None
    lines = 0
    if 'metrics.jsonl' in files:
        with open(os.path.join(out, 'metrics.jsonl')) as f:
            text = f.read()
        if text and not text.endswith('\n'):
            fail(case, 'metrics.jsonl ends in a torn line')
        for i, line in enumerate(text.splitlines()):
            try:
                json.loads(line)
            except ValueError:
                fail(case, f'metrics.jsonl line {i + 1} does not parse')
            lines += 1
    torn = []
    for f in visible:
        p = os.path.join(out, f)
        try:
            ok = (whole_npy(p) if f.endswith('.npy') else
                  whole_safetensors(p) if f.endswith('.safetensors') else
                  (json.load(open(p)) is not None) if f.endswith('.json') else True)
        except Exception:
            ok = False
        if not ok:
            torn.append(f)
    if torn:
        fail(case, f'torn files: {torn}')
    if status == 0 and sstatus != 'ok':
        fail(case, f'exit 0 but summary.json says {sstatus}')
    if sstatus == 'ok' and status != 0:
        # a SIGKILL that lands after the run wrote its final summary but before the
        # process ended: allowed only when the directory is the complete run's
        if not (expect == 'killed' and status == -9 and complete and
                lines == complete[0] and set(complete[1]) <= set(visible)):
            fail(case, f'summary.json says ok but the exit status is {status}')
    if expect == 'killed' and sstatus not in ('running', None) and status == -9:
        fail(case, f'killed run, summary.json says {sstatus}')
    if expect == 'interrupted':
        if status == 1 and sstatus != 'failed':
            fail(case, f'interrupted run, summary.json says {sstatus}')
        if status not in (0, 1):
            fail(case, f'interrupted run exited {status}')
    if expect == 'write-error':
        if status == 0:
            fail(case, 'a write failed but the exit status is 0')
        elif 'cannot' not in stderr or out not in stderr:
            fail(case, f'no message naming a file in {out}: {stderr.strip()[-300:]}')
    temps = [f for f in files if f.startswith('.')]
    last = (stderr.strip().splitlines() or [''])[-1]
    row = (case, status, sstatus or '—', lines, ', '.join(visible) or '—',
           len(temps), last if len(last) <= 120 else '…' + last[-119:])
    rows.append(row)
    print('  ', row)
    return row


def signal_case(sig, name, t):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'run')
        p = start(out)
        time.sleep(t)
        p.send_signal(sig)
        _, err = p.communicate()
        status = p.returncode
        inspect(f'{name} at {t:.1f} s', out, status, err,
                'killed' if sig == signal.SIGKILL else 'interrupted')


def mount_tmpfs(path, size, ro=False):
    opts = f'size={size}' + (',ro' if ro else '')
    return subprocess.run(['mount', '-t', 'tmpfs', '-o', opts, 'tmpfs', path],
                          capture_output=True).returncode == 0


def umount(path):
    subprocess.run(['umount', path], capture_output=True)


def full_disk_case(size):
    with tempfile.TemporaryDirectory() as tmp:
        mnt = os.path.join(tmp, 'mnt')
        os.mkdir(mnt)
        if not mount_tmpfs(mnt, size):
            rows.append((f'full disk ({size} tmpfs)', 'skipped: cannot mount a tmpfs (not root?)',
                         '', '', '', '', ''))
            return
        try:
            out = os.path.join(mnt, 'run')
            p = start(out)
            _, err = p.communicate()
            inspect(f'full disk ({size} tmpfs)', out, p.returncode, err, 'write-error')
        finally:
            umount(mnt)


def small_disk_case(script_case, case, file):
    """tests/faults/rundir.lua CASE on a 64k tmpfs: the run fails naming FILE, which is
    whole or absent (.npy) or ends in a whole line (metrics.jsonl)."""
    with tempfile.TemporaryDirectory() as tmp:
        mnt = os.path.join(tmp, 'mnt')
        os.mkdir(mnt)
        if not mount_tmpfs(mnt, '64k'):
            rows.append((case, 'skipped: cannot mount a tmpfs', '', '', '', '', ''))
            return
        try:
            out = os.path.join(mnt, 'run')
            p = subprocess.run([kdflow, 'run', os.path.join(src, 'tests', 'faults', 'rundir.lua'),
                                '--quiet', '--out', out, '--set', 'case=' + script_case],
                               capture_output=True, text=True)
            inspect(case, out, p.returncode, p.stderr, 'write-error')
            if file not in p.stderr:
                fail(case, f'message does not name {file}: {p.stderr.strip()}')
            if file.endswith('.npy') and os.path.exists(os.path.join(out, file)):
                fail(case, f'a partial {file} was left')
        finally:
            umount(mnt)


def read_only_case():
    with tempfile.TemporaryDirectory() as tmp:
        mnt = os.path.join(tmp, 'mnt')
        os.mkdir(mnt)
        if not mount_tmpfs(mnt, '1m'):
            rows.append(('read-only --out', 'skipped: cannot mount a tmpfs', '', '', '', '', ''))
            return
        try:
            os.mkdir(os.path.join(mnt, 'run'))
            subprocess.run(['mount', '-o', 'remount,ro', mnt], check=True)
            out = os.path.join(mnt, 'run')
            p = start(out)
            _, err = p.communicate()
            inspect('read-only --out (existing, empty)', out, p.returncode, err, 'write-error')
            out2 = os.path.join(mnt, 'new')
            p = start(out2)
            _, err = p.communicate()
            if p.returncode == 0 or out2 not in err:
                fail('read-only --out (to create)', f'exit {p.returncode}: {err.strip()}')
            rows.append(('read-only --out (to create)', p.returncode, '—', 0, '—', 0,
                         err.strip().splitlines()[-1] if err.strip() else ''))
        finally:
            umount(mnt)


# a complete run first: how long it takes sets the range of the kill points; its
# metrics lines and files are what a run killed after its end must show
complete = None
with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, 'run')
    t0 = time.monotonic()
    p = start(out)
    _, err = p.communicate()
    total = time.monotonic() - t0
    row = inspect('no fault', out, p.returncode, err, 'ok')
    complete = (row[3], row[4].split(', '))
    if p.returncode != 0:
        fail('no fault', f'exit {p.returncode}')
for sig, name in ((signal.SIGINT, 'SIGINT'), (signal.SIGKILL, 'SIGKILL')):
    for _ in range(trials):
        signal_case(sig, name, rng.uniform(0.2, total * 1.05))
for size in ('16k', '600k', '1200k'):
    full_disk_case(size)
small_disk_case('big_npy', 'first .npy write (400 KB), 64k tmpfs', 'ev.predictions.npy')
small_disk_case('many_ticks', '3000 ticks of metrics (150 KB), 64k tmpfs', 'metrics.jsonl')
read_only_case()

if table:
    print()
    print('| fault | exit | summary.json status | metrics lines | files left | temp files | last message |')
    print('|---|---:|---|---:|---|---:|---|')
    for r in rows:
        print('| ' + ' | '.join(str(x).replace('|', '/') for x in r) + ' |')
print(f'{len(rows)} cases, {len(failures)} failures')
sys.exit(1 if failures else 0)
