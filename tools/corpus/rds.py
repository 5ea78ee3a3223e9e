"""Minimal reader for R's serialization format (XDR, versions 2 and 3), without R.

Reads what R data packages hold: character, logical, integer, double and list vectors with
attributes, pairlists and symbols. Enough for `.rds` files and lazy-load databases
(`Rdata.rdx` index + `Rdata.rdb` blobs) such as r-cran-janeaustenr's novels.

Format reference: R's src/main/serialize.c (WriteItem / ReadItem).

    python3 tools/corpus/rds.py /usr/lib/R/site-library/janeaustenr/data/Rdata   # list objects
"""

import bz2
import gzip
import lzma
import struct
import sys
import zlib

# SEXP type ids (Rinternals.h) and serialization pseudo-types (serialize.c).
NILSXP, SYMSXP, LISTSXP, CLOSXP, ENVSXP, PROMSXP, LANGSXP = 0, 1, 2, 3, 4, 5, 6
SPECIALSXP, BUILTINSXP, CHARSXP, LGLSXP, INTSXP, REALSXP = 7, 8, 9, 10, 13, 14
CPLXSXP, STRSXP, DOTSXP, VECSXP, EXPRSXP, RAWSXP, S4SXP = 15, 16, 17, 19, 20, 24, 25
EXTPTRSXP, WEAKREFSXP = 22, 23
REFSXP, NILVALUE, GLOBALENV, UNBOUNDVALUE, MISSINGARG, BASENAMESPACE = 255, 254, 253, 252, 251, 247
NAMESPACESXP, PACKAGESXP, PERSISTSXP, EMPTYENV, BASEENV = 249, 250, 248, 242, 241
ATTRLANGSXP, ATTRLISTSXP, ALTREP = 240, 239, 238
NA_INT = -(2**31)


class RObject:
    """A decoded R value: `type` (SEXP id), `value` (Python list/str/None), `attrs` (dict)."""

    def __init__(self, type_, value, attrs=None):
        self.type = type_
        self.value = value
        self.attrs = attrs or {}

    def __repr__(self):
        n = len(self.value) if isinstance(self.value, list) else 1
        return f"RObject(type={self.type}, len={n}, attrs={list(self.attrs)})"


class _Reader:
    def __init__(self, data: bytes):
        self.b = data
        self.p = 0
        self.refs = []

    def int(self) -> int:
        (v,) = struct.unpack_from(">i", self.b, self.p)
        self.p += 4
        return v

    def bytes(self, n: int) -> bytes:
        out = self.b[self.p:self.p + n]
        self.p += n
        return out

    def length(self) -> int:
        n = self.int()
        if n == -1:  # long vector: two ints, upper then lower
            hi, lo = self.int(), self.int()
            n = (hi << 32) + lo
        return n

    def header(self):
        fmt = self.bytes(2)
        if fmt != b"X\n":
            raise ValueError(f"R serialization: expected XDR format 'X\\n', got {fmt!r}")
        version = self.int()
        self.int()  # writer R version
        self.int()  # minimal reader R version
        if version == 3:
            self.bytes(self.int())  # native encoding name
        elif version != 2:
            raise ValueError(f"R serialization: unsupported version {version}")

    def pairlist_attrs(self, obj) -> dict:
        """Turn a decoded attribute pairlist into {tag: value}."""
        out = {}
        while obj is not None and isinstance(obj, RObject) and obj.type == LISTSXP:
            tag, car = obj.value[0], obj.value[1]
            out[tag if isinstance(tag, str) else str(tag)] = car
            obj = obj.value[2]
        return out

    def item(self):
        flags = self.int()
        t = flags & 0xFF
        levels = flags >> 12
        is_obj = bool(flags & (1 << 8))
        has_attr = bool(flags & (1 << 9))
        has_tag = bool(flags & (1 << 10))
        del is_obj
        if t == NILVALUE or t in (EMPTYENV, BASEENV, GLOBALENV, UNBOUNDVALUE, MISSINGARG,
                                  BASENAMESPACE):
            return None
        if t == REFSXP:
            idx = flags >> 8
            if idx == 0:
                idx = self.int()
            return self.refs[idx - 1]
        if t == PERSISTSXP:
            v = self.strvec_plain()
            self.refs.append(v)
            return v
        if t == SYMSXP:
            name = self.item()  # CHARSXP
            self.refs.append(name)
            return name
        if t in (PACKAGESXP, NAMESPACESXP):
            v = RObject(t, self.strvec_plain())
            self.refs.append(v)
            return v
        if t == ENVSXP:
            env = RObject(ENVSXP, None)
            self.refs.append(env)
            self.int()  # locked
            enclos, frame, hashtab, attr = self.item(), self.item(), self.item(), self.item()
            env.value = {"enclos": enclos, "frame": frame, "hashtab": hashtab}
            env.attrs = self.pairlist_attrs(attr)
            return env
        if t in (LISTSXP, LANGSXP, CLOSXP, PROMSXP, DOTSXP, ATTRLANGSXP, ATTRLISTSXP):
            attr = self.item() if has_attr else None
            tag = self.item() if has_tag else None
            car = self.item()
            cdr = self.item()
            return RObject(LISTSXP if t in (LISTSXP, ATTRLISTSXP) else t, [tag, car, cdr],
                           self.pairlist_attrs(attr))
        if t == ALTREP:
            info, state, attr = self.item(), self.item(), self.item()
            return self.altrep(info, state, self.pairlist_attrs(attr))
        if t == EXTPTRSXP:
            v = RObject(t, None)
            self.refs.append(v)
            self.item()
            self.item()
        elif t == WEAKREFSXP:
            v = RObject(t, None)
            self.refs.append(v)
        elif t in (SPECIALSXP, BUILTINSXP):
            v = RObject(t, self.bytes(self.int()).decode("latin-1"))
        elif t == CHARSXP:
            n = self.int()
            if n == -1:
                return None  # NA_character_
            raw = self.bytes(n)
            latin1 = bool(levels & (1 << 2))
            return raw.decode("latin-1" if latin1 else "utf-8", errors="replace")
        elif t in (LGLSXP, INTSXP):
            n = self.length()
            vals = list(struct.unpack_from(f">{n}i", self.b, self.p))
            self.p += 4 * n
            v = RObject(t, [None if x == NA_INT else x for x in vals])
        elif t == REALSXP:
            n = self.length()
            v = RObject(t, list(struct.unpack_from(f">{n}d", self.b, self.p)))
            self.p += 8 * n
        elif t == CPLXSXP:
            n = self.length()
            v = RObject(t, list(struct.unpack_from(f">{2 * n}d", self.b, self.p)))
            self.p += 16 * n
        elif t == RAWSXP:
            v = RObject(t, self.bytes(self.length()))
        elif t == STRSXP:
            n = self.length()
            v = RObject(t, [self.item() for _ in range(n)])
        elif t in (VECSXP, EXPRSXP):
            n = self.length()
            v = RObject(t, [self.item() for _ in range(n)])
        elif t == S4SXP:
            v = RObject(t, None)
        else:
            raise ValueError(f"R serialization: unsupported SEXP type {t} at byte {self.p}")
        if has_attr:
            v.attrs = self.pairlist_attrs(self.item())
        return v

    def strvec_plain(self):
        """PERSISTSXP/PACKAGESXP payload: a 0 flag, a length, then CHARSXP items."""
        self.int()
        return [self.item() for _ in range(self.int())]

    def altrep(self, info, state, attrs):
        """Expand the common ALTREP classes R writes (compact sequences, deferred strings, wrappers)."""
        cls = info.value[1] if isinstance(info, RObject) and info.type == LISTSXP else None
        cls = cls if isinstance(cls, str) else ""
        if cls == "compact_intseq" or cls == "compact_realseq":
            n, start, step = state.value
            vals = [start + i * step for i in range(int(n))]
            if cls == "compact_intseq":
                vals = [int(x) for x in vals]
            return RObject(INTSXP if cls == "compact_intseq" else REALSXP, vals, attrs)
        if cls == "deferred_string":
            src = state.value[1]  # CONS(original vector, scalar options)
            return RObject(STRSXP, [str(x) for x in src.value], attrs)
        if cls.startswith("wrap_"):
            inner = state.value[0]
            inner.attrs = {**inner.attrs, **attrs}
            return inner
        raise ValueError(f"R serialization: unsupported ALTREP class {cls!r}")


def unserialize(data: bytes):
    """Decode one serialized R object (already decompressed)."""
    r = _Reader(data)
    r.header()
    return r.item()


def decompress(data: bytes) -> bytes:
    """Undo the whole-file compression R's saveRDS uses (gzip, bzip2, xz or none)."""
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:3] == b"BZh":
        return bz2.decompress(data)
    if data[:6] == b"\xfd7zXZ\x00":
        return lzma.decompress(data)
    return data


def read_rds(path: str):
    """Read an `.rds` file."""
    with open(path, "rb") as f:
        return unserialize(decompress(f.read()))


def _rdb_blob(blob: bytes) -> bytes:
    """One lazy-load database entry: 4-byte big-endian raw length, then compressed bytes.

    Type 1 (zlib) has no type byte; types 2/3 start with 'Z' (zlib), '2' (bzip2), 'X' (xz)
    or '0' (stored)."""
    (n,) = struct.unpack_from(">I", blob, 0)
    body = blob[4:]
    kind = body[:1]
    if kind == b"2":
        out = bz2.decompress(body[1:])
    elif kind == b"X":
        out = lzma.decompress(body[1:])
    elif kind == b"0":
        out = body[1:]
    elif kind == b"Z":
        out = zlib.decompress(body[1:])
    else:
        out = zlib.decompress(body)
    if len(out) != n:
        raise ValueError(f"lazy-load entry: expected {n} bytes, got {len(out)}")
    return out


def read_lazyload(stem: str) -> dict:
    """Read every variable of a lazy-load database `stem.rdx` + `stem.rdb` into {name: RObject}."""
    index = read_rds(stem + ".rdx")
    names = index.attrs["names"].value
    variables = dict(zip(names, index.value))["variables"]
    with open(stem + ".rdb", "rb") as f:
        db = f.read()
    out = {}
    for name, pos in zip(variables.attrs["names"].value, variables.value):
        off, length = int(pos.value[0]), int(pos.value[1])
        out[name] = unserialize(_rdb_blob(db[off:off + length]))
    return out


if __name__ == "__main__":
    for k, v in read_lazyload(sys.argv[1]).items():
        print(k, v)
