#!/usr/bin/env python3
"""A run's progress: a line per finished tick when stderr is not a terminal, a bar
rewritten in place on a terminal (a pty), both with the epoch out of g:run's `total`,
the last tick's accuracy numbers and an ETA until the last tick; nothing under --quiet.
Usage: progress.py KDFLOW SCRIPT (tests/lua/progress.lua)"""
import os
import pty
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import fail, run  # noqa: E402

kdflow, script = sys.argv[1], sys.argv[2]
tmp = tempfile.mkdtemp(prefix="kdf-progress-")
try:
    base = [kdflow, "run", script, "--threads", "1"]
    # not a terminal: one line per tick
    p = run(base + ["--out", os.path.join(tmp, "a")])
    lines = [l for l in p.stderr.splitlines() if l.startswith("prog: ")]
    want = [r"^prog: epoch 1/3  acc 0\.2500  val 1\.0000  \S+ s  ETA \S+ s$",
            r"^prog: epoch 2/3  acc 0\.5000  val 1\.0000  \S+ s  ETA \S+ s$",
            r"^prog: epoch 3/3  acc 0\.7500  val 1\.0000  \S+ s$"]
    if len(lines) != 3 or not all(re.match(w, l) for w, l in zip(want, lines)):
        fail("progress lines:\n%s\nexpected to match:\n%s" % (p.stderr, "\n".join(want)))
    if "\r" in p.stderr or "\033" in p.stderr:
        fail("a bar's control characters on a stderr that is not a terminal")
    print("ok - a line per tick with epoch, accuracy and ETA when stderr is a file")

    # --quiet: nothing at all
    p = run(base + ["--quiet", "--out", os.path.join(tmp, "b")])
    if p.stderr:
        fail("--quiet printed: %r" % p.stderr)
    print("ok - --quiet is quiet")

    # a terminal: the bar, rewritten in place, ends with a newline at the last tick
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(kdflow, base + ["--out", os.path.join(tmp, "c")])
    out = b""
    while True:
        try:
            d = os.read(fd, 4096)
        except OSError:
            break
        if not d:
            break
        out += d
    _, status = os.waitpid(pid, 0)
    text = out.decode("utf-8", "replace")
    if os.WEXITSTATUS(status) != 0:
        fail("on a pty: exit %d\n%s" % (os.WEXITSTATUS(status), text))
    bars = re.findall(r"\r\x1b\[K\[([#.]{20})\] prog epoch (\d)/3[^\r]*", text)
    if [b[1] for b in bars][-3:] != ["1", "2", "3"] or bars[-1][0] != "#" * 20:
        fail("on a pty, the bar: %r" % text)
    if not re.search(r"\] prog epoch 3/3  acc 0\.7500  val 1\.0000  \S+ s\r?\n", text):
        fail("on a pty, the last bar: %r" % text)
    print("ok - a bar on a terminal: %d updates" % len(bars))
finally:
    shutil.rmtree(tmp, ignore_errors=True)
