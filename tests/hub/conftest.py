"""A real JupyterHub on this machine, for tests/hub (run as root).

The test runs in tests/hub/run.sh's virtualenv (JupyterHub, jupyter_server, ipykernel from PyPI,
under /tmp and readable by every user: the single-user servers run as the test users and cannot
be assumed to read the repository's own .venv). Everything else lives under one temporary
directory (mode 755): a copy of this checkout's ``jupyter_energy`` package (on PYTHONPATH) and
the config enabling its server extension (on JUPYTER_CONFIG_PATH), energyd's socket and store,
the hub's database and cookie secret.  energyd runs as root (then drops privileges, as the
system daemon does) on an emulated powercap tree and listens on a temporary socket passed to the
hub, its service and the single-user servers as ENERGYD_SOCKET; the system socket is never
touched.
configurable-http-proxy comes from npm, installed in tests/hub/node_modules (package.json here).

Two local users are created (``useradd``) and removed at the end with every process they ran.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

from tests.emulators.powercap import FakePowercap, Zone  # noqa: E402

sys.path.insert(0, str(REPO / "python"))
from jupyter_energy.client import EnergydClient  # noqa: E402

PACKAGE_W = 30.0
DRAM_W = 6.0
PASSWORD = "energy-test-" + secrets.token_hex(4)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def energyd_binary() -> str:
    for c in (os.environ.get("ENERGYD"),
              os.environ.get("ENERGY_BUILD_DIR") and Path(os.environ["ENERGY_BUILD_DIR"]) / "energyd",
              REPO / "build" / "energyd"):
        if c and os.access(str(c), os.X_OK):
            return str(c)
    pytest.fail("no energyd binary: build it or set ENERGY_BUILD_DIR")


def wait_until(what: str, check, timeout_s: float, proc=None, log=None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.2)
    tail = Path(log).read_text(errors="replace")[-4000:] if log and Path(log).exists() else ""
    pytest.fail(f"{what} did not happen within {timeout_s} s\n{tail}")


def install_package(root: Path) -> Path:
    """This checkout's jupyter_energy (its Python source: energyd is the system daemon here and
    the test talks HTTP, so neither the binaries nor the built front end are needed) and the
    config that enables the server extension, readable by every user; returns the directory
    to put on PYTHONPATH (its sibling etc/jupyter goes on JUPYTER_CONFIG_PATH)."""
    pkgs = root / "pkgs"
    shutil.copytree(REPO / "python" / "jupyter_energy", pkgs / "jupyter_energy",
                    ignore=shutil.ignore_patterns("bin", "labextension", "__pycache__"))
    conf = root / "etc" / "jupyter" / "jupyter_server_config.d"
    conf.mkdir(parents=True)
    shutil.copy(REPO / "jupyter-config" / "server-config" / "jupyter_energy.json", conf)
    subprocess.run(["chmod", "-R", "a+rX", str(root)], check=True)
    return pkgs


def kill_user_processes(uid: int) -> None:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    os.kill(int(entry), signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass


class Hub:
    def __init__(self, root: Path, pkgs: Path, sock: str, users: list, admin: str):
        venv = Path(sys.prefix)  # tests/hub/run.sh's environment, readable by every user
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.service_port = free_port()
        self.admin_token = secrets.token_hex(16)
        self.log = root / "hub.log"
        chp = HERE / "node_modules" / ".bin" / "configurable-http-proxy"
        if not os.access(chp, os.X_OK):
            pytest.fail(f"configurable-http-proxy missing: run npm install in {HERE}")
        py = venv / "bin" / "python"
        cfg = root / "jupyterhub_config.py"
        env = {"ENERGYD_SOCKET": sock, "PATH": f"{venv}/bin:/usr/bin:/bin",
               "PYTHONPATH": str(pkgs), "JUPYTER_CONFIG_PATH": str(root / "etc" / "jupyter")}
        cfg.write_text(f"""
c.JupyterHub.bind_url = {self.url!r}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {free_port()}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
c.ConfigurableHTTPProxy.command = [{str(chp)!r}]
c.ConfigurableHTTPProxy.should_start = True
c.JupyterHub.db_url = "sqlite:///{root}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{root}/cookie_secret"
c.JupyterHub.pid_file = "{root}/hub.pid"
c.JupyterHub.authenticator_class = "jupyterhub.auth.DummyAuthenticator"
c.DummyAuthenticator.password = {PASSWORD!r}
c.Authenticator.allowed_users = {set(users)!r}
c.Authenticator.admin_users = {{{admin!r}}}
c.JupyterHub.redirect_to_server = False
c.JupyterHub.spawner_class = "jupyterhub.spawner.LocalProcessSpawner"
c.Spawner.cmd = [{str(venv / 'bin' / 'jupyterhub-singleuser')!r}]
c.Spawner.environment = {env!r}
c.Spawner.args = ["--EnergyExtensionApp.auto_start=False", "--EnergyExtensionApp.watch_sync_s=0.5"]
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.JupyterHub.services = [
    {{"name": "energy", "url": "http://127.0.0.1:{self.service_port}",
      "command": [{str(py)!r}, "-m", "jupyter_energy.hub"],
      "environment": {env!r}, "oauth_no_confirm": True}},
    {{"name": "test-admin", "api_token": {self.admin_token!r}}},
]
c.JupyterHub.load_roles = [
    {{"name": "energy-service", "services": ["energy"], "scopes": ["list:users", "read:users"]}},
    {{"name": "test-admin", "services": ["test-admin"],
      "scopes": ["admin:users", "admin:servers", "tokens", "access:servers", "read:users"]}},
    {{"name": "user", "scopes": ["self", "access:services!service=energy"]}},
]
""")
        self.proc = subprocess.Popen(
            [str(venv / "bin" / "jupyterhub"), "-f", str(cfg)], cwd=str(root),
            stdout=open(self.log, "wb"), stderr=subprocess.STDOUT,
            env={**os.environ, "PATH": f"{venv}/bin:{os.environ['PATH']}"},
            start_new_session=True)
        import requests
        self.http = requests.Session()

        def up():
            try:
                return self.api("GET", "users").status_code == 200
            except requests.RequestException:
                return False
        wait_until("the hub answering", up, 90, self.proc, self.log)

    def log_tail(self, n: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-n:]

    def api(self, method: str, path: str, token: str = None, **kw):
        headers = {"Authorization": f"token {token or self.admin_token}"}
        return self.http.request(method, f"{self.url}/hub/api/{path}", headers=headers,
                                 timeout=30, **kw)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # stops the servers, the service and the proxy
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@pytest.fixture(scope="session")
def hub_env():
    if os.geteuid() != 0:
        pytest.skip("the JupyterHub test creates local users: run as root")
    root = Path(tempfile.mkdtemp(prefix="je-hub-", dir="/tmp"))
    os.chmod(root, 0o755)
    made_users, fake, energyd, hub = [], None, None, None
    try:
        pkgs = install_package(root)
        tag = secrets.token_hex(3)
        names = [f"jeha{tag}", f"jehb{tag}"]
        for name in names:
            subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True)
            made_users.append(name)
        fake = FakePowercap(str(root / "sys"), [Zone("intel-rapl:0", "package-0", PACKAGE_W,
                                                     children=[Zone("intel-rapl:0:0", "dram", DRAM_W)])],
                            period_s=0.01)
        fake.start()
        sock = str(root / "energyd.sock")
        store = root / "energyd-state"
        store.mkdir()
        os.chmod(store, 0o777)
        energyd_log = root / "energyd.log"
        energyd = subprocess.Popen(
            [energyd_binary(), "--listen", f"unix:{sock}", "--interval", "0.1",
             "--scan-interval", "0.5", "--store-batch", "1", "--state-dir", str(store),
             "--sysfs-root", str(root / "sys")],
            stdout=open(energyd_log, "wb"), stderr=subprocess.STDOUT)
        wait_until("energyd answering", lambda: os.path.exists(sock) and EnergydClient(sock).ping(),
                   20, energyd, energyd_log)
        hub = Hub(root, pkgs, sock, names + ["root"], admin="root")
        yield {"root": root, "hub": hub, "users": names, "sock": sock,
               "energyd": EnergydClient(sock)}
    finally:
        if hub is not None:
            hub.stop()
        for name in made_users:
            kill_user_processes(pwd.getpwnam(name).pw_uid)
        if energyd is not None and energyd.poll() is None:
            energyd.terminate()
            energyd.wait(15)
        if fake is not None:
            fake.close()
        for name in made_users:
            r = subprocess.run(["userdel", "--remove", name], capture_output=True, text=True)
            if r.returncode not in (0, 12):  # 12: could not remove the mail spool
                print(f"userdel {name}: {r.stderr}", file=sys.stderr)
        shutil.rmtree(root, ignore_errors=True)
