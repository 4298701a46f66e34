#!/usr/bin/env python3
"""check_refs.py - every reference to a repository file names a file that exists.

Reads the user documents (README.md, docs/*.md, results/README.md, bench/README.md,
data/README.md, experiments/**/README.md) and the comments of the code in lib/, cli/,
tests/ and bench/, and prints FILE:LINE: REFERENCE for each reference that names no file:
  - a Markdown link target (documents), relative to the document, with its #anchor
    checked against the headings of the Markdown file it points to;
  - a path that starts with a top-level directory of the repository (lib/spec.c,
    experiments/quickstart.yaml, results/), relative to the repository root; a #anchor
    after a Markdown file (docs/spec.md#metricscsv) must name one of its headings;
  - a bare file name ending in .md .c .h (SPEC.md, metrics.c): some tracked file must
    have that name (system headers such as mpi.h, and the struct members in NOT_FILES,
    excepted).
Paths with a wildcard or a placeholder (tests/e2e/*.sh, tests/bad/NNN-name.yaml,
runs/<name>), the files .gitignore names (outputs such as bench/results.csv) and the
dataset cache (data/cache) are not references to repository files. Exit 0 when every reference
resolves, 1 otherwise.
    python3 scripts/check_refs.py [ROOT]
"""
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
TOPDIRS = {"lib", "cli", "tests", "bench", "data", "scripts", "docs", "results", "experiments", "cmake", ".ci"}
SYSTEM_HEADERS = {"mpi.h", "omp.h", "dnnl.h", "cblas.h", "lapacke.h", "png.h", "jpeglib.h", "zlib.h",
                  "yaml.h", "cairo.h", "check.h", "stdio.h", "stdlib.h", "string.h", "math.h",
                  "stdint.h", "stddef.h", "unistd.h", "pthread.h", "immintrin.h", "errno.h",
                  "signal.h", "time.h", "fcntl.h", "setjmp.h", "stdarg.h", "limits.h", "float.h",
                  "assert.h", "ctype.h", "inttypes.h", "stdbool.h", "sys/stat.h"}
NOT_FILES = {"x.c", "shape.c"}  # C expressions in comments (a struct's member c)


def tracked():
    try:
        out = subprocess.run(["git", "-C", ROOT, "ls-files"], capture_output=True, text=True, check=True).stdout
        return [l for l in out.splitlines() if l]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: every file
        return [os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "**", "*"), recursive=True)
                if os.path.isfile(p) and "/build" not in p]


FILES = tracked()
BASENAMES = {os.path.basename(f) for f in FILES}


def documents():
    docs = ["README.md", "results/README.md", "bench/README.md", "data/README.md"]
    docs += sorted(f for f in FILES if re.fullmatch(r"docs/[^/]+\.md", f))
    docs += sorted(f for f in FILES if f.startswith("experiments/") and f.endswith("/README.md"))
    return [d for d in docs if os.path.exists(os.path.join(ROOT, d))]


def code_files():
    return sorted(f for f in FILES if f.split("/")[0] in ("lib", "cli", "tests", "bench")
                  and re.search(r"(\.(c|h|sh|py)|CMakeLists\.txt)$", f))


def c_comments(text):
    """(line, text) of each comment of C source, string and character literals skipped"""
    out, i, n, line = [], 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            i = j + 1
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            for k, part in enumerate(text[i:j].split("\n")):
                out.append((line + k, part))
            line += text.count("\n", i, j)
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append((line, text[i:j]))
            i = j
        else:
            i += 1
    return out


def hash_comments(text):
    """(line, text) of each # comment of a shell, Python or CMake file"""
    out = []
    for no, l in enumerate(text.split("\n"), 1):
        m = re.search(r"(^|\s)#(?![!{])(.*)$", l)
        if m and not re.search(r"\$\{?#", l[:m.start() + 2]):
            out.append((no, m.group(2)))
    return out


def anchors(path):
    """GitHub's anchors for the headings of a Markdown file (and explicit id= anchors)"""
    seen, out = {}, set()
    fence = False
    for l in open(path, encoding="utf-8", errors="replace"):
        if l.startswith("```"):
            fence = not fence
        if fence:
            continue
        out.update(re.findall(r'<a (?:id|name)="([^"]+)"', l))
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", l)
        if m:
            a = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
            k = seen.get(a, 0)
            seen[a] = k + 1
            out.add(a if k == 0 else "%s-%d" % (a, k))
    return out


ANCHORS = {}
PATH_RE = re.compile(r"(?<![\w./~$-])((?:\.\./)*\.?[\w-]+(?:/[\w.*<>{}$-]+)+/?(?:#[\w-]+)?)")
BARE_RE = re.compile(r"(?<![\w./~$-])([\w-]+\.(?:md|c|h))(?![\w/-])")
LINK_RE = re.compile(r"\]\(([^)\s]+)\)")


def exists(rel):
    return os.path.exists(os.path.join(ROOT, rel))


def ignored(rel):
    """1 when .gitignore names rel (an output, not a repository file)"""
    try:
        return subprocess.run(["git", "-C", ROOT, "check-ignore", "-q", "--no-index", rel],
                              stderr=subprocess.DEVNULL).returncode == 0
    except OSError:
        return False


def check_link(src, target):
    if re.match(r"[a-z]+:", target) or target.startswith("#") and not src.endswith(".md"):
        return True
    path, _, anchor = target.partition("#")
    rel = os.path.normpath(os.path.join(os.path.dirname(src), path)) if path else src
    if not exists(rel):
        return False
    if anchor and rel.endswith(".md"):
        if rel not in ANCHORS:
            ANCHORS[rel] = anchors(os.path.join(ROOT, rel))
        return anchor in ANCHORS[rel]
    return True


def refs(text, doc):
    """the references in one line of text"""
    if doc:
        for t in LINK_RE.findall(text):
            yield "link", t
        text = LINK_RE.sub("]", text)  # link targets are checked as links only
    for t in PATH_RE.findall(text):
        yield "path", t
    for t in BARE_RE.findall(text):
        yield "bare", t


def check(src, lines, doc):
    bad = []
    fence = False
    for no, text in lines:
        if doc and text.startswith("```"):
            fence = not fence
        for kind, t in refs(text, doc):
            t = t.rstrip(".,:;")
            if kind == "link":
                ok = check_link(src, t)
            elif kind == "path":
                first = t.split("/")[0]
                if (first not in TOPDIRS or re.search(r"[*<>{}$]|(^|/)[A-Z]{3,}[-.]", t)
                        or t.startswith("data/cache")):
                    continue
                f, _, anchor = t.partition("#")
                ok = exists(f) or (doc and exists(os.path.join(os.path.dirname(src), f))) or ignored(f)
                if ok and anchor and f.endswith(".md") and exists(f):
                    ok = check_link("", t)  # the heading must exist
            else:
                if t in SYSTEM_HEADERS or t in NOT_FILES:
                    continue
                ok = t in BASENAMES
            if not ok:
                bad.append("%s:%d: %s" % (src, no, t))
    return bad


def main():
    bad = []
    for d in documents():
        with open(os.path.join(ROOT, d), encoding="utf-8", errors="replace") as f:
            bad += check(d, list(enumerate(f.read().split("\n"), 1)), True)
    for c in code_files():
        with open(os.path.join(ROOT, c), encoding="utf-8", errors="replace") as f:
            text = f.read()
        comments = c_comments(text) if re.search(r"\.[ch]$", c) else hash_comments(text)
        bad += check(c, comments, False)
    for b in bad:
        print(b)
    print("%d dangling file reference%s" % (len(bad), "" if len(bad) == 1 else "s"), file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
