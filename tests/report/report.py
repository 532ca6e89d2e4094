#!/usr/bin/env python3
"""kdflow report without a browser: the page has its sections, every image it shows
exists and is a well-formed, non-empty SVG, nothing points outside the report directory,
and bad input gets a clear error and exit status 2.  Usage: report.py KDFLOW"""
import os
import re
import shutil
import sys
import tempfile
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import fail, make_runs, read_page, run  # noqa: E402

kdflow = sys.argv[1]
tmp = tempfile.mkdtemp(prefix="kdf-report-")
try:
    blind, ce = make_runs(kdflow, tmp)
    out = os.path.join(tmp, "report")
    p = run([kdflow, "report", blind, ce, "--out", out])
    index = os.path.join(out, "index.html")
    if p.stdout.strip() != index:
        fail("stdout should name the page, got %r" % p.stdout)
    page = read_page(index)
    heads = page.headings
    for want in ("Learning curves", "Run blind_kd", "Run ce", "Detection precision / recall",
                 "Score histogram, threshold and groups", "Confusion matrix", "Graph",
                 "Parameters"):
        if want not in heads:
            fail("no heading %r in %s" % (want, heads))
    # self-contained: no script, no stylesheet link, nothing fetched from elsewhere
    for tag, attrs in page.tags:
        if tag in ("script", "link", "iframe", "object", "embed"):
            fail("the page has a <%s>" % tag)
        for k in ("src", "href"):
            v = attrs.get(k, "")
            if re.match(r"^[a-z]+:", v) or v.startswith("/") or ".." in v:
                fail("<%s %s=%r> points outside the report directory" % (tag, k, v))
    for href in page.links:
        if href.startswith("#"):
            continue
        if not os.path.isfile(os.path.join(out, href)):
            fail("link %r: no such file" % href)
    # the images: curves (2), detection, histogram, 2 confusion matrices, 2 graphs
    imgs = page.images
    if len(imgs) != 8:
        fail("expected 8 images, got %d: %s" % (len(imgs), imgs))
    for name in ("curves-loss.svg", "curves-accuracy.svg", "r1-hist-detection.svg",
                 "r1-confusion-test_eval.svg", "r2-confusion-student_eval.svg",
                 "r1-detection-0.svg", "r1-blind_kd.svg", "r2-ce.svg"):
        if name not in imgs:
            fail("no image %s in %s" % (name, imgs))
    for src in imgs:
        path = os.path.join(out, src)
        if not os.path.isfile(path):
            fail(src + ": no such file")
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as e:
            fail("%s: not well-formed XML: %s" % (src, e))
        if not root.tag.endswith("svg"):
            fail("%s: the root is <%s>, not <svg>" % (src, root.tag))
        w = float(re.sub(r"[a-z]+$", "", root.get("width", "0")))
        h = float(re.sub(r"[a-z]+$", "", root.get("height", "0")))
        shapes = sum(1 for e in root.iter() if e.tag.split("}")[-1] in
                     ("polyline", "path", "polygon", "line", "rect", "text", "ellipse"))
        if w <= 0 or h <= 0 or shapes < 20:
            fail("%s: %gx%g with %d shapes: an empty drawing" % (src, w, h, shapes))
    # the histogram shows the split: θ and the groups in its legend
    def svg_text(name):
        root = ET.parse(os.path.join(out, name)).getroot()
        return "\n".join("".join(e.itertext()) for e in root.iter()
                         if e.tag.split("}")[-1] == "text")

    hist = svg_text("r1-hist-detection.svg")
    for want in ("theta =", "group 4"):
        if want not in hist:
            fail("the histogram has no %r" % want)
    # the curves overlay both runs
    acc = svg_text("curves-accuracy.svg")
    for want in ("blind_kd: test_eval.accuracy", "ce: student_eval.accuracy"):
        if want not in acc:
            fail("the accuracy curves have no %r" % want)
    with open(index, encoding="utf-8") as f:
        text = f.read()
    if "tipping_epoch" not in text or "fashion-mnist" not in text:
        fail("the page does not show the run's parameters and result")
    print("ok - the page, its sections and %d images" % len(imgs))

    # a script of two stages (a teacher, then kd): the run leaves stages.dot, and the
    # report draws it (both clusters and the checkpoint between them), each stage's own
    # drawing only linked
    src = os.environ.get("KDF_TEST_SRCDIR", ".") + "/.."
    kd = os.path.join(tmp, "kd")
    run([kdflow, "run", os.path.join(src, "graphs", "kd.lua"), "--out", kd, "--threads", "1",
         "--quiet", "--set", "subset=300", "--set", "test_subset=200", "--set", "epochs=1",
         "--set", "teacher_epochs=1", "--set", "teacher_arch=mlp:784-32-10"])
    if not os.path.isfile(os.path.join(kd, "stages.dot")):
        fail("a two-stage run wrote no stages.dot")
    kd_out = os.path.join(tmp, "kd-report")
    run([kdflow, "report", kd, "--out", kd_out])
    kd_page = read_page(os.path.join(kd_out, "index.html"))
    graphs = [i for i in kd_page.images if i.endswith(".svg") and not i.startswith(
        ("curves-", "r1-confusion", "r1-hist", "r1-detection"))]
    if graphs != ["r1-stages.svg"]:
        fail("the two-stage run's report should draw r1-stages.svg alone, got %s" % graphs)
    root = ET.parse(os.path.join(kd_out, "r1-stages.svg")).getroot()
    text = "\n".join("".join(e.itertext()) for e in root.iter() if e.tag.split("}")[-1] == "text")
    for want in ("teacher", "kd", "teacher.safetensors", "checkpoint", "save"):
        if want not in text.split("\n") and want not in text:
            fail("the stages drawing has no %r" % want)
    if "teacher.safetensors" not in text or "1 tick run" not in text:
        fail("the stages drawing does not show the checkpoint and each stage's ticks")
    for f in ("r1-teacher.dot",):
        if f not in kd_page.links:
            fail("the report does not link %s (a stage's own drawing)" % f)
    print("ok - a two-stage run: the report draws every stage in one drawing")

    # one run: the default --out is RUN_DIR/report
    run([kdflow, "report", ce])
    if not os.path.isfile(os.path.join(ce, "report", "index.html")):
        fail("kdflow report RUN_DIR wrote no RUN_DIR/report/index.html")
    print("ok - default --out")

    # bad input: exit 2 and a message naming the file
    def bad(args, want, what):
        p = run([kdflow, "report"] + args, expect=2)
        if want not in p.stderr:
            fail("%s: stderr should say %r, got %r" % (what, want, p.stderr))
        print("ok - " + what)

    bad([os.path.join(tmp, "nowhere")], "nowhere' does not exist", "a missing directory")
    empty = os.path.join(tmp, "empty")
    os.mkdir(empty)
    bad([empty], "not a run directory", "a directory that is not a run")
    broken = os.path.join(tmp, "broken")
    shutil.copytree(ce, broken)
    with open(os.path.join(broken, "metrics.jsonl")) as f:
        lines = len(f.readlines())
    with open(os.path.join(broken, "metrics.jsonl"), "a") as f:
        f.write('{"graph": "ce", "tick": 3, \n')
    bad([broken], "metrics.jsonl:%d: not a JSON object" % (lines + 1),
        "a torn metrics.jsonl line")
    shutil.rmtree(broken)
    shutil.copytree(ce, broken)
    with open(os.path.join(broken, "student_eval.confusion.npy"), "r+b") as f:
        f.seek(0)
        f.write(b"not an npy")
    bad([broken, "--out", os.path.join(tmp, "r3")], "student_eval.confusion.npy",
        "a corrupt .npy")
    bad([ce, "--otu", "x"], "did you mean '--out'", "a mistyped option")
    bad([], "needs a run directory", "no run directory")
    p = run([kdflow, "report", "--help"])
    if "--out DIR" not in p.stdout:
        fail("report --help does not explain --out")
    print("ok - --help")
finally:
    shutil.rmtree(tmp, ignore_errors=True)
