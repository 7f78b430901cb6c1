"""The committed type stubs describe the extension as built."""
import os
import subprocess
import sys

import edgelm

STUB = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                    "python", "edgelm", "_edgelm.pyi")


def test_stubs_are_current(tmp_path):
    out = tmp_path / "_edgelm.pyi"
    subprocess.run([sys.executable, "-m", "nanobind.stubgen", "-q", "-m", "edgelm._edgelm", "-o", str(out)],
                   check=True, env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(edgelm.__file__))))
    assert out.read_text() == open(STUB).read(), (
        "python/edgelm/_edgelm.pyi is stale: regenerate it with "
        "PYTHONPATH=build/python python3 -m nanobind.stubgen -m edgelm._edgelm -o python/edgelm/_edgelm.pyi")
