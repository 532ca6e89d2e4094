#!/usr/bin/env python3
"""kdflow report in a real headless browser (Debian's chromium): the page loads with no
error (no console message, no failed load, no script error), every image renders
(complete, naturalWidth > 0), and a screenshot of it is not blank (many distinct
colours, no single colour covering nearly all of it). Exit 77 (skip) without chromium.
Usage: browser.py KDFLOW"""
import json
import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import fail, make_runs, png_pixels, run  # noqa: E402

chromium = shutil.which("chromium") or shutil.which("chromium-browser")
if not chromium:
    print("1..0 # SKIP chromium is not installed (tools/bootstrap installs it)")
    sys.exit(77)

# Runs in the page before anything else; after the load event it writes what it saw
# into the DOM, which --dump-dom prints.
PROBE = """<script>
(function () {
  var errors = [];
  window.addEventListener('error', function (e) {
    var t = e.target;
    errors.push(t && t !== window ? 'failed to load ' + (t.src || t.href || t.tagName)
                                  : 'script error: ' + e.message);
  }, true);
  ['error', 'warn', 'log', 'info'].forEach(function (k) {
    var orig = console[k];
    console[k] = function () { errors.push('console.' + k + ': ' + [].join.call(arguments, ' '));
                               return orig.apply(console, arguments); };
  });
  window.addEventListener('load', function () {
    var imgs = [].map.call(document.images, function (i) {
      return { src: i.getAttribute('src'), complete: i.complete, w: i.naturalWidth,
               h: i.naturalHeight };
    });
    var p = document.createElement('pre');
    p.id = 'kdf-probe';
    p.textContent = JSON.stringify({ errors: errors, images: imgs });
    document.body.appendChild(p);
  });
})();
</script>"""


def browse(args, profile):
    return run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                "--no-first-run", "--user-data-dir=" + profile, "--enable-logging=stderr",
                "--v=0", "--virtual-time-budget=15000"] + args, timeout=240)


kdflow = sys.argv[1]
tmp = tempfile.mkdtemp(prefix="kdf-browser-")
try:
    dirs = make_runs(kdflow, tmp)
    out = os.path.join(tmp, "report")
    run([kdflow, "report"] + dirs + ["--out", out])
    index = os.path.join(out, "index.html")
    with open(index, encoding="utf-8") as f:
        page = f.read()
    probe = os.path.join(out, "probe.html")
    with open(probe, "w", encoding="utf-8") as f:
        f.write(page.replace("<head>", "<head>" + PROBE, 1))
    profile = os.path.join(tmp, "profile")

    p = browse(["--dump-dom", "file://" + probe], profile)
    m = re.search(r'<pre id="kdf-probe">(.*?)</pre>', p.stdout, re.S)
    if not m:
        fail("the probe wrote nothing: the page did not load\n" + p.stderr[-3000:])
    seen = json.loads(m.group(1).replace("&quot;", '"').replace("&lt;", "<")
                      .replace("&gt;", ">").replace("&amp;", "&"))
    # the browser's own console log: any message from the page is an error here (the
    # page has no scripts; the probe's own script logs nothing)
    console = [l for l in p.stderr.splitlines() if ":CONSOLE" in l]
    if seen["errors"] or console:
        fail("errors while loading the page: %s %s" % (seen["errors"], console))
    print("ok - the page loads with no console message or failed load")
    imgs = seen["images"]
    if len(imgs) < 8:
        fail("the browser saw %d images, expected 8" % len(imgs))
    bad = [i for i in imgs if not i["complete"] or i["w"] <= 0 or i["h"] <= 0]
    if bad:
        fail("images that do not render: %s" % bad)
    print("ok - %d images render (%s)" % (len(imgs), ", ".join(
        "%s %dx%d" % (i["src"], i["w"], i["h"]) for i in imgs)))

    shot = os.path.join(tmp, "shot.png")
    browse(["--screenshot=" + shot, "--window-size=1200,2400", "file://" + index], profile)
    if not os.path.isfile(shot):
        fail("chromium wrote no screenshot")
    w, h, rows, bpp = png_pixels(shot)
    counts = {}
    for row in rows:
        for x in range(0, w * bpp, bpp):
            px = row[x:x + 3]
            counts[px] = counts.get(px, 0) + 1
    top = max(counts.values()) / float(w * h)
    # a blank page is one colour; text alone gives a few dozen anti-aliased greys; the
    # plots' colours and the confusion matrix's blues give hundreds
    if len(counts) < 100 or top > 0.97:
        fail("the screenshot looks blank: %d colours, the commonest covers %.1f %%"
             % (len(counts), 100 * top))
    print("ok - the screenshot (%dx%d) has %d colours; the commonest covers %.1f %%"
          % (w, h, len(counts), 100 * top))
finally:
    shutil.rmtree(tmp, ignore_errors=True)
