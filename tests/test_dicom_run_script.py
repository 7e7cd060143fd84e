"""run.sh starts the DICOM listener beside the worker and the web server, and stops it with them."""

from __future__ import annotations

import subprocess
import time

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from tests.test_run_script import REPO, _embedded_env, _free_port, _stop


def _echo(port: int) -> bool:
    ae = AE(ae_title="RUNCHECK")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 5
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title="MAMMO_AI")
    if not assoc.is_established:
        return False
    try:
        return assoc.send_c_echo().Status == 0x0000
    finally:
        assoc.release()


@pytest.mark.slow
def test_run_sh_starts_the_dicom_listener_and_stops_it_on_exit(tmp_path):
    web_port, dicom_port = _free_port(), _free_port()
    env = {**_embedded_env(tmp_path / "var", web_port), "DICOM_PORT": str(dicom_port),
           "DICOM_ALLOWED_PEERS": "RUNCHECK@127.0.0.1"}  # fmt: skip
    process = subprocess.Popen(
        ["bash", "run.sh"], cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    output = ""
    try:
        while f"http://127.0.0.1:{web_port}/" not in output:
            line = process.stdout.readline()
            assert line, f"run.sh ended early:\n{output[-3000:]}"
            output += line
        assert f"Starting the DICOM listener MAMMO_AI on port {dicom_port}" in output
        deadline = time.monotonic() + 60
        while not _echo(dicom_port):
            assert time.monotonic() < deadline, (tmp_path / "var" / "log" / "dicom-listener.log").read_text()
            time.sleep(0.5)
    finally:
        _stop(process)
    time.sleep(1)
    assert not _echo(dicom_port)  # the listener went with run.sh
