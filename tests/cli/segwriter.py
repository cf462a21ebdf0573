"""segwriter.py - write edgelog segment files from a test script, byte for byte
as segments/FORMAT.md specifies them, with no engine: deterministic content
(fixed salts and timestamps, so golden outputs work), any segment size,
gaps in the seqs, and appends through a shared mapping like the engine's
(which raise no inotify event), for the tools' tests.

XXH3 comes from the system's libxxhash through ctypes (the library edgelog
itself builds against); msgpack is encoded here (small maps of short
strings and integers are all the tests need).
"""
import ctypes
import ctypes.util
import mmap
import os
import struct

_xx = ctypes.CDLL(ctypes.util.find_library("xxhash") or "libxxhash.so.0")
_xx.XXH3_64bits.restype = ctypes.c_uint64
_xx.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_xx.XXH3_64bits_withSeed.restype = ctypes.c_uint64
_xx.XXH3_64bits_withSeed.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]

MAGIC = b"EDGELOG\x1a"
HEADER = 64
FRAME = 16
BASE_TS = 1700000000000  # 2023-11-14T22:13:20Z


def xxh3(b, seed=None):
    if seed is None:
        return _xx.XXH3_64bits(b, len(b))
    return _xx.XXH3_64bits_withSeed(b, len(b), seed)


def mp(obj):
    """msgpack of None, bool, int >= 0, str, list or dict (keys str)."""
    if obj is None:
        return b"\xc0"
    if obj is True or obj is False:
        return b"\xc3" if obj else b"\xc2"
    if isinstance(obj, int):
        assert obj >= 0
        if obj < 128:
            return bytes([obj])
        if obj < 1 << 16:
            return b"\xcd" + struct.pack(">H", obj)
        if obj < 1 << 32:
            return b"\xce" + struct.pack(">I", obj)
        return b"\xcf" + struct.pack(">Q", obj)
    if isinstance(obj, str):
        b = obj.encode()
        if len(b) < 32:
            return bytes([0xA0 | len(b)]) + b
        assert len(b) < 256
        return b"\xd9" + bytes([len(b)]) + b
    if isinstance(obj, list):
        assert len(obj) < 16
        return bytes([0x90 | len(obj)]) + b"".join(mp(x) for x in obj)
    if isinstance(obj, dict):
        assert len(obj) < 16
        return bytes([0x80 | len(obj)]) + b"".join(mp(k) + mp(v) for k, v in obj.items())
    raise TypeError(obj)


def seg_name(base):
    return "%020d.seg" % base


def header(base, base_ts, salt):
    h = MAGIC + struct.pack("<IIQqQq", 1, 0, base, base_ts, salt, 0) + bytes(12)
    return h + struct.pack("<I", xxh3(h) & 0xFFFFFFFF)


def frame(salt, seq_delta, ts_delta, payload):
    h12 = struct.pack("<IIi", len(payload), seq_delta, ts_delta)
    c = xxh3(h12, xxh3(payload, salt)) & 0xFFFFFFFF
    return struct.pack("<I", c or 1) + h12 + payload


class Writer:
    """Appends records to DIR/segments the way the engine lays them out:
    preallocated files written through a shared mapping, a new segment
    prepared as .spare with its header and renamed into place when the next
    frame would not fit. Record i's timestamp is BASE_TS + i ms."""

    def __init__(self, d, seg_bytes=4096):
        self.segdir = os.path.join(d, "segments")
        os.makedirs(self.segdir, exist_ok=True)
        self.seg_bytes = seg_bytes
        self.map = None
        self.fd = -1
        self.next_seq = 1
        self.segments = []  # base seqs, in order

    def _roll(self, need):
        self.close()
        base = self.next_seq
        size = max(self.seg_bytes, HEADER + need)
        spare = os.path.join(self.segdir, ".spare")
        fd = os.open(spare, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.ftruncate(fd, size)
        m = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.base_ts = BASE_TS + base
        self.salt = 0x9E3779B97F4A7C15 ^ base
        m[0:HEADER] = header(base, self.base_ts, self.salt)
        os.rename(spare, os.path.join(self.segdir, seg_name(base)))
        self.fd, self.map, self.size, self.pos, self.base = fd, m, size, HEADER, base
        self.segments.append(base)

    def skip(self, n):
        """Leave a gap: the next record gets a seq n higher than it would."""
        self.next_seq += n

    def append(self, obj=None):
        """Append one record (default: {"i": seq}); returns its seq."""
        seq = self.next_seq
        payload = mp({"i": seq} if obj is None else obj)
        need = FRAME + len(payload)
        if self.map is None or self.pos + need > self.size:
            self._roll(need)
        f = frame(self.salt, seq - self.base, seq - self.base, payload)
        # Payload first, header last, as the engine's writer does.
        self.map[self.pos + FRAME:self.pos + need] = f[FRAME:]
        self.map[self.pos:self.pos + FRAME] = f[:FRAME]
        self.pos += need
        self.next_seq = seq + 1
        return seq

    def close(self):
        if self.map is not None:
            self.map.close()
            os.close(self.fd)
            self.map = None

    def path(self, base):
        return os.path.join(self.segdir, seg_name(base))


def frames(path):
    """(offset, size) of each frame of a segment file, by walking it."""
    data = open(path, "rb").read()
    pos, out = HEADER, []
    while pos + 16 <= len(data):
        (length,) = struct.unpack_from("<I", data, pos + 4)
        if length == 0:
            break
        out.append((pos, 16 + length))
        pos += 16 + length
    return out


def flip(path, off):
    """Invert some bits of the byte at off (damage for the tests)."""
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0x5A]))
