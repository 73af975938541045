"""A real ``globus-gridftp-server`` on 127.0.0.1 for tests, anonymous ftp:// or
gsiftp:// with a throw-away CA, host and user certificates and a grid-mapfile
(all made here with openssl)."""
from __future__ import annotations

import os
import shutil

import pytest
import signal
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SERVER = shutil.which("globus-gridftp-server") or "/usr/sbin/globus-gridftp-server"
USER_DN = "/O=frazil test/CN=frazil test user"


def have_gridftp() -> bool:
    return Path(SERVER).exists() and shutil.which("globus-url-copy") is not None


@pytest.fixture
def gridftp_installed() -> None:
    """GridFTP tests need the real server and client; ``make test`` installs them.
    Missing tools fail the test with the fix, rather than skipping it unseen."""
    if not have_gridftp():
        pytest.fail("GridFTP tools missing: run 'make debian-deps' (globus-gridftp-server-progs, "
                    "globus-gass-copy-progs), which 'make test' does")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def traversable(path: Path) -> None:
    """The server works as 'nobody' after login: every ancestor of what it
    reads (served files, the CA directory) must be traversable, and pytest's
    tmp dirs are 0700."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(parent, mode | stat.S_IXOTH)


def public_dir(prefix: str) -> Path:
    """A fresh directory outside pytest's tree (pytest resets its base to 0700
    whenever any session starts, which would lock 'nobody' out mid-test)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(path, 0o755)
    return path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@dataclass
class Credentials:
    """A CA directory (X509_CERT_DIR), host and user certificates, a grid-mapfile."""

    cert_dir: Path
    host_cert: Path
    host_key: Path
    user_cert: Path
    user_key: Path
    gridmap: Path

    def client_env(self) -> dict[str, str]:
        return {"X509_CERT_DIR": str(self.cert_dir), "X509_USER_CERT": str(self.user_cert),
                "X509_USER_KEY": str(self.user_key)}


def make_credentials(base: Path) -> Credentials:
    """A CA valid for a day that signs a host certificate (CN=localhost) and a user one."""
    base.mkdir(parents=True, exist_ok=True)
    certs = base / "certificates"
    certs.mkdir(exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", "ca.key",
             "-out", "ca.pem", "-subj", "/O=frazil test/CN=frazil test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=base)
    for name, subject, ext in (
            ("host", "/O=frazil test/CN=localhost",
             "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n"
             "keyUsage=critical,digitalSignature,keyEncipherment\n"),
            ("user", USER_DN,
             "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n")):
        (base / f"{name}.ext").write_text(ext)
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}key.pem",
                 "-out", f"{name}.csr", "-subj", subject, cwd=base)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "1", "-out", f"{name}cert.pem",
                 "-extfile", f"{name}.ext", cwd=base)
        os.chmod(base / f"{name}key.pem", 0o400)
    for hash_flag in ("-subject_hash", "-subject_hash_old"):
        digest = subprocess.run(["openssl", "x509", hash_flag, "-noout", "-in", "ca.pem"], cwd=base,
                                check=True, capture_output=True, text=True).stdout.strip()
        shutil.copy(base / "ca.pem", certs / f"{digest}.0")
        (certs / f"{digest}.signing_policy").write_text(
            "access_id_CA X509 '/O=frazil test/CN=frazil test CA'\n"
            "pos_rights globus CA:sign\n"
            "cond_subjects globus '\"/O=frazil test/*\"'\n")
    os.chmod(base, 0o755)
    traversable(certs)
    gridmap = base / "grid-mapfile"
    gridmap.write_text(f'"{USER_DN}" nobody\n')
    return Credentials(cert_dir=certs, host_cert=base / "hostcert.pem", host_key=base / "hostkey.pem",
                       user_cert=base / "usercert.pem", user_key=base / "userkey.pem", gridmap=gridmap)


@dataclass
class GridFtpServer:
    """``globus-gridftp-server`` serving ``root`` (world-writable) on 127.0.0.1."""

    root: Path
    credentials: Credentials | None = None
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the served directory (absolute paths on the server)."""
        if self.credentials is None:
            return f"ftp://127.0.0.1:{self.port}{self.root}"
        return f"gsiftp://localhost:{self.port}{self.root}"

    def start(self, timeout: float = 20.0) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o777)
        traversable(self.root)
        command = [SERVER, "-p", str(self.port), "-d", "error", "-control-interface", "127.0.0.1",
                   "-data-interface", "127.0.0.1", "-s", "-control-idle-timeout", "30"]
        env = dict(os.environ)
        if self.credentials is None:
            command += ["-aa", "-anonymous-user", "nobody"]
        else:
            creds = self.credentials
            env.update(X509_CERT_DIR=str(creds.cert_dir), X509_USER_CERT=str(creds.host_cert),
                       X509_USER_KEY=str(creds.host_key), GRIDMAP=str(creds.gridmap))
        # Its own session: stop() ends the daemon and the per-connection children it forked.
        self.proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"globus-gridftp-server exited with {self.proc.returncode}")
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("globus-gridftp-server did not listen in time")

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self.proc = None
