"""Build the public-domain training corpus from Debian packages (no R, no network beyond apt).

Sources (all public domain texts; package versions are recorded in build/corpus/sources.json):
  - Jane Austen's six novels: r-cran-janeaustenr, data/Rdata.rdb (R lazy-load database).
  - Moby Dick (Project Gutenberg #2701): r-cran-tokenizers, data/Rdata.rdb; Gutenberg
    header and licence footer stripped.
  - King James Bible: bible-kjv-text, dumped with the `bible` program of bible-kjv.

Output: build/corpus/train.txt, val.txt (paragraphs one per line, books separated by a line
holding only "\f"), sources.json. The validation split is every 50th contiguous chunk of 40
paragraphs (2%), so it holds whole passages the model never saw.

    apt-get install -y bible-kjv bible-kjv-text
    python3 tools/corpus/build_corpus.py            # downloads the two R packages with apt-get
"""

import glob
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import rds  # noqa: E402

OUT = "build/corpus"
DEBS = "build/corpus/debs"
AUSTEN = ["sensesensibility", "prideprejudice", "mansfieldpark", "emma", "northangerabbey",
          "persuasion"]
CHUNK = 40  # paragraphs per split chunk
VAL_EVERY = 50  # 1 chunk in 50 goes to validation (2%)


def fetch(pkg: str) -> str:
    """Download and unpack a .deb into build/corpus/debs/<pkg>; returns that folder."""
    os.makedirs(DEBS, exist_ok=True)
    if not glob.glob(f"{DEBS}/{pkg}_*.deb"):
        subprocess.run(["apt-get", "download", pkg], cwd=DEBS, check=True)
    deb = sorted(glob.glob(f"{DEBS}/{pkg}_*.deb"))[-1]
    dest = f"{DEBS}/{pkg}"
    subprocess.run(["dpkg-deb", "-x", deb, dest], check=True)
    return dest


def deb_version(pkg: str) -> str:
    deb = sorted(glob.glob(f"{DEBS}/{pkg}_*.deb"))[-1]
    return subprocess.run(["dpkg-deb", "-f", deb, "Version"], capture_output=True, text=True,
                          check=True).stdout.strip()


def clean(s: str) -> str:
    """Normalise one paragraph: ASCII quotes, no italics underscores, single spaces."""
    s = s.replace("\ufeff", "")
    for a, b in (("\u2018", "'"), ("\u2019", "'"), ("\u201c", '"'), ("\u201d", '"'),
                 ("\u2014", "--"), ("\u2013", "-"), ("\xa0", " ")):
        s = s.replace(a, b)
    s = re.sub(r"_([^_]+)_", r"\1", s)
    return re.sub(r"\s+", " ", s).strip()


def paragraphs(lines) -> list:
    """Join hard-wrapped lines into paragraphs (blank lines separate paragraphs)."""
    out, cur = [], []
    for line in lines:
        if line is None or not line.strip():
            if cur:
                out.append(clean(" ".join(cur)))
                cur = []
        else:
            cur.append(line)
    if cur:
        out.append(clean(" ".join(cur)))
    return [p for p in out if p]


def austen() -> list:
    root = fetch("r-cran-janeaustenr")
    data = rds.read_lazyload(f"{root}/usr/lib/R/site-library/janeaustenr/data/Rdata")
    return [paragraphs(data[name].value) for name in AUSTEN]


def moby_dick() -> list:
    root = fetch("r-cran-tokenizers")
    data = rds.read_lazyload(f"{root}/usr/lib/R/site-library/tokenizers/data/Rdata")
    text = data["mobydick"].value[0]
    start = text.index("*** START OF THIS PROJECT GUTENBERG EBOOK")
    start = text.index("\n", start) + 1
    end = text.index("End of Project Gutenberg")
    body = text[start:end].replace("\r", "")
    # Drop the producer line and transcriber's notes between the header and the book.
    body = "MOBY DICK; OR THE WHALE\n\nBy Herman Melville\n\n" + body[body.index("ETYMOLOGY."):]
    return [paragraphs(body.split("\n"))]


def kjv() -> list:
    """Each chapter heading is a paragraph; each verse (number dropped) is a paragraph."""
    text = subprocess.run(["bible", "-l0", "Gen1:1-Rev22:21"], capture_output=True, text=True,
                          check=True).stdout
    paras = []
    for line in text.split("\n"):
        m = re.match(r"^\s+\d+ (.*)$", line)
        if m:
            paras.append(clean(m.group(1)))
        elif line.strip():
            paras.append(clean(line))
    return [paras]


def split(books: list):
    """Contiguous chunks of CHUNK paragraphs; every VAL_EVERY-th chunk goes to validation."""
    train, val, k = [], [], 0
    for book in books:
        tb, vb = [], []
        for i in range(0, len(book), CHUNK):
            (vb if k % VAL_EVERY == VAL_EVERY // 2 else tb).append("\n".join(book[i:i + CHUNK]))
            k += 1
        train.append("\n".join(tb))
        val.append("\n".join(vb))
    return train, [v for v in val if v]


def main():
    os.makedirs(OUT, exist_ok=True)
    books = austen() + moby_dick() + kjv()
    train, val = split(books)
    for name, docs in (("train", train), ("val", val)):
        with open(f"{OUT}/{name}.txt", "w", encoding="utf-8") as f:
            f.write("\n\f\n".join(docs) + "\n")
    sources = {
        "r-cran-janeaustenr": {"version": deb_version("r-cran-janeaustenr"),
                               "texts": AUSTEN, "text_license": "public domain",
                               "package_license": "MIT"},
        "r-cran-tokenizers": {"version": deb_version("r-cran-tokenizers"),
                              "texts": ["mobydick (Project Gutenberg EBook #2701)"],
                              "text_license": "public domain", "package_license": "MIT"},
        "bible-kjv-text": {"version": subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "bible-kjv-text"], capture_output=True,
            text=True).stdout, "texts": ["King James Version (1611)"],
            "text_license": "public domain (see the package's copyright file)"},
    }
    sizes = {n: os.path.getsize(f"{OUT}/{n}.txt") for n in ("train", "val")}
    json.dump({"sources": sources, "bytes": sizes}, open(f"{OUT}/sources.json", "w"), indent=1)
    print(json.dumps(sizes))


if __name__ == "__main__":
    main()
