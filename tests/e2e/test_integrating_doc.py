"""docs/INTEGRATING.md: every command on the page runs, in order, against a fresh anvil.

The page's ```sh blocks are joined into one bash script (`set -euo pipefail`) and run from
the repository root with PORT set to a free port; anvil is started by the page itself and
the whole process group is killed afterwards. `cast` can print an error and still exit 0,
so the output is checked too.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "INTEGRATING.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
# Fences that hold no command: data, Solidity, or output.
NOT_RUN = {"json", "solidity", "text"}


def blocks(text: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(text)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_doc(script: str, port: int) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PORT": str(port),
        "PATH": os.pathsep.join(
            [
                str(Path(sys.executable).parent),
                str(ROOT / "node_modules" / ".bin"),
                os.environ.get("PATH", ""),
            ]
        ),
    }
    proc = subprocess.Popen(
        ["bash", "-c", "set -euo pipefail\n" + script],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # anvil joins the group: killed below whatever happens
    )
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_integrating_doc__every_fence__is_a_command_block_or_data():
    langs = {lang for lang, _ in blocks(DOC.read_text())}
    assert langs <= {"sh"} | NOT_RUN, f"unknown fences {langs - {'sh'} - NOT_RUN}: run or label"


def test_integrating_doc__commands__run_against_a_fresh_anvil():
    script = "\n".join(body for lang, body in blocks(DOC.read_text()) if lang == "sh")
    assert "anvil --port $PORT" in script and "kill $ANVIL_PID" in script
    result = run_doc(script, free_port())
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Error" not in output, output
    # the fill and the liquidation landed
    assert output.count("status               1 (success)") == 2, output
    # equity, MM, IM after the fill, health 700; after the crash -100; positive after
    assert (
        "1500000000000000000000 [1.5e21]\n800000000000000000000 [8e20]\n"
        "1200000000000000000000 [1.2e21]\n700000000000000000000 [7e20]\n"
        "engine: unknown function\n"
    ) in output
    assert "\n-100000000000000000000 [-1e20]\n" in output
    health_after = output.split("status               1 (success)")[-1].split("\n")[1]
    assert int(health_after.split()[0]) > 0, output
    assert re.search(r"^v = 2[78]$", output, re.M), output
    assert '"Ballast"\n"1"\n' in output  # eip712Domain: name, version
