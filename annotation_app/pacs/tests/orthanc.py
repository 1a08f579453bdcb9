"""A real Orthanc (Debian packages `orthanc` and `orthanc-dicomweb`) for the PACS tests.

`start_orthanc(folder)` writes a JSON configuration into `folder` (storage there, free HTTP and DICOM
ports, HTTP basic auth with a generated password, the DICOMweb plugin on /dicom-web/), starts the
`Orthanc` binary and waits until its REST API answers. `stop()` terminates it. Instances are stored
through Orthanc's own REST API (POST /instances), not through our code.
"""

import json
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

PLUGINS = Path("/usr/share/orthanc/plugins")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Orthanc:
    proc: subprocess.Popen
    http_port: int
    dicom_port: int
    username: str
    password: str
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.username, self.password)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def store_files(self, paths) -> list[str]:
        """POST each DICOM file to Orthanc's REST API; returns Orthanc's instance ids."""
        ids = []
        for path in paths:
            response = requests.post(f"{self.url}/instances", data=Path(path).read_bytes(), auth=self.auth, timeout=30)
            response.raise_for_status()
            ids.append(response.json()["ID"])
        return ids

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_orthanc(folder: Path, timeout: float = 60.0) -> Orthanc:
    binary = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
    if not Path(binary).exists() or not (PLUGINS / "libOrthancDicomWeb.so").exists():
        raise RuntimeError("Orthanc is not installed: apt-get install -y orthanc orthanc-dicomweb (.ci/run does it)")
    folder.mkdir(parents=True, exist_ok=True)
    http_port, dicom_port = free_port(), free_port()
    username, password = "pacs-test", f"pw-{secrets.token_hex(12)}"
    config = {
        "Name": "pytest-orthanc",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "storage"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomServerEnabled": True,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {username: password},
        "HttpsVerifyPeers": False,
        "Plugins": [str(PLUGINS)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True, "Ssl": False},
        "StableAge": 1,
        "ConcurrentJobs": 1,
        "HttpThreadsCount": 4,
    }
    config_path = folder / "orthanc.json"
    config_path.write_text(json.dumps(config, indent=1))
    log_path = folder / "orthanc.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [binary, str(config_path)], cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    orthanc = Orthanc(proc, http_port, dicom_port, username, password, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Orthanc exited during start:\n{orthanc.log()}")
        try:
            plugins = requests.get(f"{orthanc.url}/plugins", auth=orthanc.auth, timeout=2)
            if plugins.ok:
                if "dicom-web" not in plugins.json():
                    orthanc.stop()
                    raise RuntimeError(f"Orthanc started without its DICOMweb plugin: {plugins.json()}")
                return orthanc
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    orthanc.stop()
    raise RuntimeError(f"Orthanc did not answer within {timeout:.0f}s:\n{orthanc.log()}")
