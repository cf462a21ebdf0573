"""The ctypes mirrors of edgelog.h's structs (edgelog/_lib.py) match the C
compiler's layout field by field. Needs a C compiler (the build has one);
skipped with a message otherwise."""

import ctypes
import os
import shutil
import subprocess

import pytest

from edgelog import _lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STRUCTS = {
    "edgelog_config": _lib.Config,
    "edgelog_status": _lib.Status,
    "edgelog_record": _lib.Record,
    "edgelog_repair_report": _lib.RepairReport,
}


def test_struct_layout_matches_header(tmp_path):
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler found (cc, gcc): struct layout not checked")
    src = ["#include <stddef.h>", "#include <stdio.h>", "#include <edgelog.h>", "int main(void) {"]
    for cname, cls in STRUCTS.items():
        src.append('printf("%s sizeof %%zu\\n", sizeof(%s));' % (cname, cname))
        for field, _ in cls._fields_:
            src.append('printf("%s %s %%zu\\n", offsetof(%s, %s));' % (cname, field, cname, field))
    src.append("return 0; }")
    c = tmp_path / "layout.c"
    c.write_text("\n".join(src) + "\n")
    exe = tmp_path / "layout"
    subprocess.run([cc, "-std=c11", "-I", os.path.join(ROOT, "engine", "include"), str(c),
                    "-o", str(exe)], check=True)
    got = {}
    for line in subprocess.run([str(exe)], check=True, capture_output=True,
                               text=True).stdout.splitlines():
        s, f, v = line.split()
        got[(s, f)] = int(v)
    for cname, cls in STRUCTS.items():
        assert got[(cname, "sizeof")] == ctypes.sizeof(cls), cname
        for field, _ in cls._fields_:
            assert got[(cname, field)] == getattr(cls, field).offset, (cname, field)
