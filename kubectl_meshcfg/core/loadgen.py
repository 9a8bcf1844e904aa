"""The load generator of `rollout-test`: a Python program (stdlib only, Python >= 3.8) that
runs as `python3 -c GENERATOR ANNOTATIONS PATH WORKERS RATE TIMEOUT` in a short-lived pod.

Where to send comes from the pod's own annotations, read from a downward API file that
kubelet rewrites when the annotations change: `TARGETS` (comma-separated host:port, the
Service's cluster IP, or the ready endpoints the command keeps up to date) and `STOP`
("true": start no new request, finish the ones in flight, exit 0). Each worker sends one
request at a time on a new connection (so every request is balanced afresh, as a
connection-per-request client is by kube-proxy), at most RATE requests a second in all.
One JSON line a request on stdout: start and end (epoch seconds), target, status (the HTTP
status, or `reset`, `refused`, `closed`, `timeout`, `bad-response`, an OS error's name).
`{"event": "sending"}` once every worker has sent its first request; `{"event": "done"}`
last. The command reads the lines from the pod's log.

Kept as text because it runs in the pod, not here; tests/unit/test_rollout_loadgen.py
runs it against a local server.
"""

from __future__ import annotations

TARGETS = "meshcfg.io/rollout-test-targets"
STOP = "meshcfg.io/rollout-test-stop"
ANNOTATIONS_DIR = "/etc/meshcfg-rollout-test"
ANNOTATIONS_FILE = f"{ANNOTATIONS_DIR}/annotations"

GENERATOR = r'''
import http.client, json, re, signal, socket, sys, threading, time

ANNOTATIONS, PATH = sys.argv[1], sys.argv[2]
WORKERS, RATE, TIMEOUT = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
TARGETS, STOP = "@TARGETS@", "@STOP@"
LINE = re.compile(r'^([^=]+)="(.*)"$')
lock = threading.Lock()
state = {"read": -1.0, "targets": [], "stop": False, "turn": 0, "started": 0, "next": 0.0}


def emit(record):
    with lock:
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()


def annotations():
    found = {}
    try:
        with open(ANNOTATIONS) as handle:
            text = handle.read()
    except OSError:
        return found
    for line in text.splitlines():
        match = LINE.match(line)
        if match:
            found[match.group(1)] = json.loads('"' + match.group(2) + '"')
    return found


def refresh():
    now = time.monotonic()
    if now - state["read"] < 0.1:
        return
    found = annotations()
    state["read"] = now
    state["targets"] = [t for t in found.get(TARGETS, "").split(",") if t]
    state["stop"] = state["stop"] or found.get(STOP) == "true"


def pick():
    """The next target round-robin, paced to RATE; (None, True) once told to stop."""
    with lock:
        refresh()
        if state["stop"]:
            return None, True
        now = time.monotonic()
        if not state["targets"] or now < state["next"]:
            return None, False
        state["next"] = max(now, state["next"]) + 1.0 / RATE
        state["turn"] += 1
        return state["targets"][state["turn"] % len(state["targets"])], False


def outcome(conn):
    try:
        conn.request("GET", PATH, headers={"User-Agent": "meshcfg-rollout-test",
                                           "Connection": "close"})
        response = conn.getresponse()
        response.read()
        return str(response.status)
    except socket.timeout:
        return "timeout"
    except http.client.RemoteDisconnected:
        return "closed"
    except ConnectionResetError:
        return "reset"
    except ConnectionRefusedError:
        return "refused"
    except http.client.HTTPException:
        return "bad-response"
    except OSError as error:
        return type(error).__name__
    finally:
        conn.close()


def one(target, first):
    host, _, port = target.rpartition(":")
    start = time.time()
    conn = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=TIMEOUT)
    if first:
        with lock:
            state["started"] += 1
            everyone = state["started"] == WORKERS
        if everyone:
            emit({"event": "sending", "time": start})
    status = outcome(conn)
    emit({"start": start, "end": time.time(), "target": target, "status": status})


def worker():
    first = True
    while True:
        target, stop = pick()
        if stop:
            return
        if target is None:
            time.sleep(0.02)   # pacing: wait for a target or for the next slot of RATE
            continue
        one(target, first)
        first = False


def main():
    signal.signal(signal.SIGTERM, lambda *_: (emit({"event": "terminated"}), sys.exit(0)))
    emit({"event": "started", "time": time.time()})
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.5)
    emit({"event": "done", "time": time.time()})


main()
'''.replace("@TARGETS@", TARGETS).replace("@STOP@", STOP)
