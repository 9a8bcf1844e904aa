"""rollout-test's load generator (core/loadgen.py), run here as the pod runs it: targets
from an annotations file as kubelet writes it (downward API, Go-quoted values), changed
while it runs; every outcome reported; told to stop, it finishes what is in flight."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from clusterlib import poll

from kubectl_meshcfg.core import loadgen, rollout


class Handler(BaseHTTPRequestHandler):
    release = threading.Event()

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path == "/cut":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
            self.connection.close()    # RST: a request cut, as a killed proxy cuts it
            return
        if self.path == "/held":
            Handler.release.wait(30)
        self.send_response(503 if self.path == "/busy" else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    Handler.release.set()
    httpd.shutdown()
    httpd.server_close()


def annotate(path: Path, **values: str) -> None:
    """What kubelet writes for metadata.annotations: key="value" lines (%q-quoted)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{k}={json.dumps(v)}\n" for k, v in sorted(values.items())))
    tmp.replace(path)


class Generator:
    def __init__(self, tmp: Path, path: str, workers: int, targets: str) -> None:
        self.file = tmp / "annotations"
        annotate(self.file, **{loadgen.TARGETS: targets, "other.io/x": 'a "quoted" value'})
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "-c", loadgen.GENERATOR, str(self.file), path, str(workers),
             "200", "5"], stdout=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def log(self) -> rollout.GeneratorLog:
        return rollout.parse_log("".join(self.lines))

    def stop(self, **more: str) -> rollout.GeneratorLog:
        annotate(self.file, **{loadgen.STOP: "true", **more})
        assert self.proc.wait(timeout=30) == 0
        self.reader.join(10)
        return self.log()


def test_outcomes_are_counted_and_stop_waits_for_requests_in_flight(
        tmp_path: Path, server: str) -> None:
    Handler.release.clear()
    gen = Generator(tmp_path, "/held", 3, server)
    poll(lambda: "sending" in gen.log().events, timeout=30, what="all workers sending")
    assert gen.log().requests == []                      # all three held by the server
    annotate(gen.file, **{loadgen.STOP: "true", loadgen.TARGETS: server})
    Handler.release.set()
    assert gen.proc.wait(timeout=30) == 0
    gen.reader.join(10)
    log = gen.log()
    assert "done" in log.events and log.other == []
    # the three held requests were answered, not cut (a worker may start one more in the
    # 0.1 s the generator keeps its last read of the annotations)
    assert len(log.requests) >= 3 and {r.status for r in log.requests} == {"200"}
    assert log.events["done"] >= max(r.end for r in log.requests)


def test_a_cut_request_and_a_refused_target_are_failures(tmp_path: Path,
                                                               server: str) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        refused = f"127.0.0.1:{closed.getsockname()[1]}"
    gen = Generator(tmp_path, "/cut", 2, server)
    poll(lambda: len(gen.log().requests) >= 4, timeout=30, what="cut requests")
    annotate(gen.file, **{loadgen.TARGETS: refused})    # the target list changes under it
    poll(lambda: any(r.status == "refused" for r in gen.log().requests), timeout=30,
         what="a refused connection")
    log = gen.stop()
    statuses = {r.status for r in log.requests}
    assert statuses <= {"reset", "closed", "refused"} and "refused" in statuses, statuses
    counts = rollout.request_counts(log.requests, log.events["started"])
    assert counts["failed"] == counts["sent"] == len(log.requests)


def test_the_rate_bounds_how_many_requests_start(tmp_path: Path, server: str) -> None:
    file = tmp_path / "annotations"
    annotate(file, **{loadgen.TARGETS: server})
    proc = subprocess.Popen([sys.executable, "-c", loadgen.GENERATOR, str(file), "/", "4", "10",
                             "5"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())["time"]
    requests: list[float] = []
    for line in proc.stdout:
        record = json.loads(line)
        if "start" in record:
            requests.append(record["start"])
            if len(requests) == 21:
                break
    proc.kill()
    proc.wait()
    # 10 a second: 21 requests span at least 2 s (each slot is 0.1 s after the previous)
    assert requests[-1] - first >= 1.9, requests[-1] - first
