"""A real Apache Kafka broker on loopback, run from Maven Central's jars.

No Docker and no downloaded tarball: Maven fetches ``kafka_2.13`` once into the
cache, and the broker runs as one combined KRaft broker/controller with its
state under ``settings.home / "kafka"``. It runs detached (its own session), so
closing the terminal that started it does not kill it; ``stop`` does.
"""

from __future__ import annotations

import base64
import dataclasses
import errno
import fcntl
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from fleetpulse.errors import KafkaUnavailable, LocalKafkaError
from fleetpulse.settings import Settings
from fleetpulse.topics import check_kafka

log = logging.getLogger(__name__)

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>fleetpulse.local</groupId>
  <artifactId>kafka-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{version}</version>
    </dependency>
    <dependency>
      <!-- kafka ships no slf4j binding: without one the broker logs nothing -->
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>1.7.36</version>
    </dependency>
  </dependencies>
</project>
"""

# log4j writes to stdout, which start() sends to kafka.log: one file, in order,
# with the JVM's own errors (bad heap, missing class) beside the broker's lines.
_LOG4J = """log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
"""

# auto.create.topics.enable=false: topics come from fleetpulse.topics, with the
# declared partitions and retention, never from a producer's first message.
_SERVER = """process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{cport}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
auto.create.topics.enable=false
default.replication.factor=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
"""

_HEAP = "-Xmx512m"
_FETCH_TIMEOUT_S = 900
_TAIL_LINES = 20
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclasses.dataclass(frozen=True)
class KafkaStatus:
    """What ``fleetpulse kafka status`` shows."""

    running: bool
    pid: int | None
    bootstrap: str
    log_file: Path
    data_dir: Path

    def __str__(self) -> str:
        state = f"running (pid {self.pid}) on {self.bootstrap}" if self.running else "not running"
        return f"local Kafka {state}\n  data: {self.data_dir}\n  log:  {self.log_file}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalKafka:
    """Fetch, start, stop and inspect the local single-node broker."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.jars_dir = settings.cache_dir.expanduser().resolve() / f"kafka-{settings.kafka_version}"
        self.root = settings.home.expanduser().resolve() / "kafka"
        self.data_dir = self.root / "data"
        self.log_file = self.root / "kafka.log"
        self.pid_file = self.root / "kafka.pid"
        self.bootstrap = f"127.0.0.1:{settings.kafka_port}"

    # -- fetch -------------------------------------------------------------

    @property
    def _libs(self) -> Path:
        return self.jars_dir / "libs"

    @property
    def _fetched_marker(self) -> Path:
        return self.jars_dir / "fetch-complete"

    def fetch(self) -> Path:
        """Fetch the broker's jars once per machine and version; return their folder.

        The marker is written last, so a fetch cut short is redone from scratch.
        A file lock keeps two processes (two test runs) from fetching into the
        same folder at once.
        """
        if self._fetched_marker.exists():
            return self._libs
        self.jars_dir.mkdir(parents=True, exist_ok=True)
        with open(self.jars_dir / "fetch.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not self._fetched_marker.exists():
                self._run_maven()
                self._fetched_marker.write_text(f"kafka_2.13 {self.settings.kafka_version}\n")
        return self._libs

    def _run_maven(self) -> None:
        mvn = _executable("mvn", "Maven is needed once, to fetch the Kafka jars")
        print(f"fleetpulse: fetching Apache Kafka {self.settings.kafka_version} from Maven Central "
              f"into {self.jars_dir} (once; about a minute)...", file=sys.stderr)
        shutil.rmtree(self._libs, ignore_errors=True)
        (self.jars_dir / "pom.xml").write_text(_POM.format(version=self.settings.kafka_version))
        cmd = [mvn, "-q", "-B", "-f", str(self.jars_dir / "pom.xml"), "dependency:copy-dependencies",
               f"-DoutputDirectory={self._libs}", "-DincludeScope=runtime"]
        _run(cmd, f"Maven could not fetch Kafka {self.settings.kafka_version}", _FETCH_TIMEOUT_S)

    # -- start -------------------------------------------------------------

    def start(self, timeout: float = 90) -> KafkaStatus:
        """Start the broker and wait until it answers metadata; no-op if ours already runs.

        ``timeout`` bounds the wait for the broker, not the one-time jar fetch.
        """
        current = self.status()
        if current.running:
            log.info("local Kafka already running (pid %d)", current.pid)
            return current
        self.pid_file.unlink(missing_ok=True)
        self._require_free_port()
        java = _executable("java", "Java 17+ is needed to run the local Kafka broker")
        self.fetch()
        self.root.mkdir(parents=True, exist_ok=True)
        self._write_config()
        if not (self.data_dir / "meta.properties").exists():
            self._format(java)
        pid = self._launch(java)
        self._wait_ready(pid, timeout)
        return self.status()

    def _require_free_port(self) -> None:
        """Fail clearly when someone else's process holds our port."""
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", self.settings.kafka_port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                raise LocalKafkaError(
                    f"port {self.settings.kafka_port} on 127.0.0.1 is already in use by another process "
                    "(not a broker started by fleetpulse from this home); stop it, or set "
                    "FLEETPULSE_KAFKA_PORT to a free port, or FLEETPULSE_KAFKA_BOOTSTRAP to use that broker"
                ) from exc

    def _write_config(self) -> None:
        """Written on every start: the controller port is picked afresh each time."""
        server = _SERVER.format(port=self.settings.kafka_port, cport=free_port(), data=self.data_dir)
        (self.root / "server.properties").write_text(server)
        (self.root / "log4j.properties").write_text(_LOG4J)

    def _java_cmd(self, java: str, main: str, *args: str) -> list[str]:
        return [java, _HEAP, "-Djava.awt.headless=true", f"-XX:ErrorFile={self.root / 'hs_err_%p.log'}",
                f"-Dlog4j.configuration=file:{self.root / 'log4j.properties'}",
                "-cp", str(self._libs / "*"), main, *args]

    def _format(self, java: str) -> None:
        """Format KRaft storage once per home, with a fresh cluster id."""
        cmd = self._java_cmd(java, "kafka.tools.StorageTool", "format", "-t", _cluster_id(),
                             "-c", str(self.root / "server.properties"))
        _run(cmd, f"formatting Kafka storage in {self.data_dir} failed", 120)

    def _launch(self, java: str) -> int:
        """Spawn java detached, output to kafka.log (the previous run's kept as .1).

        posix_spawn rather than Popen: the broker is meant to outlive us, and we
        track it by pid (reaping it in _alive), so there is no Popen to keep.
        """
        if self.log_file.exists():
            self.log_file.replace(self.log_file.with_name("kafka.log.1"))
        cmd = self._java_cmd(java, "kafka.Kafka", str(self.root / "server.properties"))
        output = (os.POSIX_SPAWN_OPEN, 1, str(self.log_file), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        no_input = (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)
        pid = os.posix_spawn(java, cmd, os.environ, setsid=True,
                             file_actions=[no_input, output, (os.POSIX_SPAWN_DUP2, 1, 2)])
        self.pid_file.write_text(f"{pid}\n")
        return pid

    def _wait_ready(self, pid: int, timeout: float) -> None:
        """Poll until the broker answers metadata; on failure leave no stray process."""
        deadline = time.monotonic() + timeout
        local = dataclasses.replace(self.settings, kafka_bootstrap="")
        while time.monotonic() < deadline:
            if not _alive(pid):
                self.pid_file.unlink(missing_ok=True)
                raise LocalKafkaError(f"local Kafka exited during startup; see {self.log_file}:\n"
                                      f"{_tail(self._read_log())}")
            if _accepts(self.settings.kafka_port):
                try:
                    check_kafka(local, timeout=min(2.0, max(deadline - time.monotonic(), 0.1)))
                    return
                except KafkaUnavailable:
                    pass
            time.sleep(0.25)
        self.stop()
        raise LocalKafkaError(f"local Kafka did not answer on {self.bootstrap} within {timeout:g} s "
                              f"(stopped it); see {self.log_file}:\n{_tail(self._read_log())}")

    # -- stop / status -----------------------------------------------------

    def stop(self, timeout: float = 30) -> bool:
        """Stop our broker; return False (and log it) when none was running.

        SIGTERM first: the broker shuts down cleanly and the next start skips
        log recovery. SIGKILL only when that takes longer than ``timeout``.
        """
        pid = self._running_pid()
        if pid is None:
            log.info("local Kafka is not running; nothing to stop")
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        if not _wait_exit(pid, timeout):
            log.warning("local Kafka (pid %d) did not stop within %g s after SIGTERM; killing it", pid, timeout)
            os.kill(pid, signal.SIGKILL)
            _wait_exit(pid, 10)
        self.pid_file.unlink(missing_ok=True)
        return True

    def status(self) -> KafkaStatus:
        """Whether our broker process is alive (not whether it answers: see check_kafka)."""
        pid = self._running_pid()
        return KafkaStatus(pid is not None, pid, self.bootstrap, self.log_file, self.data_dir)

    def _running_pid(self) -> int | None:
        """The pid in the pid file, if that process is alive and is our broker.

        Checking the command line guards against a stale pid file whose pid the
        OS has since given to an unrelated process (after a reboot, say).
        """
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if _alive(pid) and str(self.root / "server.properties") in _command_line(pid):
            return pid
        return None

    def _read_log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def _executable(name: str, why: str) -> str:
    """Full path of ``name`` (java honours JAVA_HOME), or a LocalKafkaError saying why it is needed."""
    java_home = os.environ.get("JAVA_HOME")
    if name == "java" and java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which(name)
    if not found:
        raise LocalKafkaError(f"`{name}` not found on PATH: {why}. Install it, or set "
                              "FLEETPULSE_KAFKA_BOOTSTRAP to an existing Kafka, or use the compose file in infra/")
    return found


def _run(cmd: list[str], failure: str, timeout: float) -> None:
    """Run a tool to completion; a failure or hang becomes LocalKafkaError with its last lines."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise LocalKafkaError(f"{failure}: no result within {timeout:g} s") from exc
    if done.returncode != 0:
        raise LocalKafkaError(f"{failure} (exit {done.returncode}):\n{_tail(done.stdout + done.stderr)}")


def _cluster_id() -> str:
    """A random Kafka Uuid in its base64url form (22 chars).

    One that starts with '-' would be parsed as a command-line option, which is
    why Kafka's own Uuid.randomUuid() avoids them too.
    """
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; reaps it first if it is our own exited child (a zombie)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _command_line(pid: int) -> str:
    """The process's command line, from /proc where there is one, else from ps (macOS)."""
    proc = Path(f"/proc/{pid}/cmdline")
    if Path("/proc/self").exists():
        try:
            return proc.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return ""
    done = subprocess.run(["ps", "-ww", "-p", str(pid), "-o", "args="], capture_output=True, text=True)
    return done.stdout


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.2)
    return not _alive(pid)


def _accepts(port: int) -> bool:
    """A plain TCP probe first, so librdkafka is not asked while nothing listens yet."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _tail(text: str, lines: int = _TAIL_LINES) -> str:
    """The last lines, without the ANSI colour codes Maven writes even in batch mode."""
    return "\n".join(_ANSI.sub("", text).strip().splitlines()[-lines:])
