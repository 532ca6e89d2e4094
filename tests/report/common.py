"""Shared by the report tests: make small run directories, read the page, decode PNGs.

Python standard library only."""
import html.parser
import os
import struct
import subprocess
import sys
import zlib


def fail(msg):
    print("not ok: " + msg)
    sys.exit(1)


def run(cmd, expect=0, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if expect is not None and p.returncode != expect:
        fail("%s: exit %d, expected %d\nstdout: %s\nstderr: %s"
             % (" ".join(cmd), p.returncode, expect, p.stdout[-2000:], p.stderr[-2000:]))
    return p


def make_runs(kdflow, tmp):
    """Two small runs on Fashion-MNIST: blind_kd (a split, detection, a score histogram)
    and ce (for the overlay). Returns their directories."""
    small = ["--set", "subset=2000", "--set", "test_subset=500", "--threads", "1", "--quiet"]
    src = os.environ.get("KDF_TEST_SRCDIR", ".") + "/.."
    dirs = []
    for graph, epochs in (("blind_kd", 7), ("ce", 3)):
        d = os.path.join(tmp, graph)
        run([kdflow, "run", os.path.join(src, "graphs", graph + ".lua"), "--out", d,
             "--set", "epochs=%d" % epochs] + small)
        dirs.append(d)
    return dirs


class Page(html.parser.HTMLParser):
    """The headings, image sources, links and tags of a page."""

    def __init__(self):
        super().__init__()
        self.headings, self.images, self.links, self.tags = [], [], [], []
        self._in = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag in ("h1", "h2", "h3"):
            self._in = tag
            self.headings.append("")
        elif tag == "img":
            self.images.append(a.get("src", ""))
        elif tag == "a":
            self.links.append(a.get("href", ""))

    def handle_endtag(self, tag):
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._in:
            self.headings[-1] += data


def read_page(path):
    p = Page()
    with open(path, encoding="utf-8") as f:
        p.feed(f.read())
    return p


def png_pixels(path):
    """(width, height, list of rows of pixel tuples) of an 8-bit RGB or RGBA PNG."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail(path + ": not a PNG")
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour not in (2, 6) or interlace:
                fail(path + ": only 8-bit RGB/RGBA, non-interlaced PNGs are read here")
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(height):
        ftype, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if ftype == 1:
                line[x] = (line[x] + a) & 255
            elif ftype == 2:
                line[x] = (line[x] + b) & 255
            elif ftype == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, rows, bpp
