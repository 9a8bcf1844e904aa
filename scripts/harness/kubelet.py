"""A kubelet stand-in that stops a pod's containers as kubelet does.

kubelet (pkg/kubelet/kuberuntime/kuberuntime_container.go, killContainer) stops all
containers of a pod in parallel, each on its own timer from the same instant:
  * no preStop: SIGTERM now, SIGKILL when the grace period G ends;
  * preStop: run the hook, waiting for it at most G seconds (it is not stopped then);
    grace = G - (whole seconds the hook took); if grace < 2 then grace = 2 (the
    minimum shutdown window); SIGTERM; SIGKILL after grace.
Native sidecar mode (as a real kubelet does it): the proxy's preStop starts at once, in
parallel with the application's shutdown; only its SIGTERM waits for its turn, once the
application container has exited, with what is left of G (at least 2 s).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MIN_GRACE = 2  # minimumGracePeriodInSeconds


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@dataclass
class Container:
    name: str
    proc: subprocess.Popen[Any]  # PID 1 of the container (its own session/process group)
    prestop: Callable[[], subprocess.Popen[Any]] | None = None
    log: list[dict[str, Any]] = field(default_factory=list)
    hook_log: list[str] = field(default_factory=list)
    # results (seconds since the deletion instant)
    prestop_exit: int | None = None
    prestop_seconds: float | None = None
    prestop_finished: bool = False
    sigterm_at: float | None = None
    grace_after_hook: int | None = None
    exited_at: float | None = None
    killed: bool = False
    _hook: subprocess.Popen[Any] | None = None
    cond: threading.Condition = field(default_factory=threading.Condition)

    def start_reader(self) -> None:
        """Collect the container's stdout (JSON lines) as a container runtime would."""
        def read() -> None:
            assert self.proc.stdout is not None
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
                try:
                    rec = json.loads(line)
                except ValueError:
                    rec = {"raw": line.rstrip("\n")}
                with self.cond:
                    self.log.append(rec)
                    self.cond.notify_all()

        threading.Thread(target=read, daemon=True, name=f"log-{self.name}").start()

    def wait_log(self, pred: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                for rec in self.log:
                    if pred(rec):
                        return rec
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.name}: no matching log line; got {self.log[-5:]}")
                self.cond.wait(left)

    def events(self, who: str | None = None, event: str | None = None) -> list[dict[str, Any]]:
        with self.cond:
            return [r for r in self.log
                    if (who is None or r.get("who") == who)
                    and (event is None or r.get("event") == event)]


class Kubelet:
    def __init__(self, grace: int, native_sidecar: bool = False) -> None:
        self.grace = grace
        self.native = native_sidecar
        self.t0 = 0.0

    def rel(self) -> float:
        return round(time.monotonic() - self.t0, 3)

    def _wait_exit(self, c: Container, until: float) -> bool:
        try:
            c.proc.wait(max(0.0, until - time.monotonic()))
        except subprocess.TimeoutExpired:
            return False
        return True

    def _kill(self, c: Container) -> None:
        c.killed = True
        _killpg(c.proc.pid, signal.SIGKILL)
        if c._hook is not None:
            _killpg(c._hook.pid, signal.SIGKILL)
        c.proc.wait()

    def _reap(self, c: Container) -> None:
        """Whole container gone: PID 1 exited, so the runtime kills what is left in it."""
        _killpg(c.proc.pid, signal.SIGKILL)
        if c._hook is not None and c._hook.poll() is None:
            _killpg(c._hook.pid, signal.SIGKILL)
            c._hook.wait()
        with c.cond:
            c.exited_at = self.rel()
            c.cond.notify_all()

    def stop_container(self, c: Container, grace: int, started: float,
                       turn: Callable[[], None] | None = None) -> None:
        if c.prestop is not None and grace > 0:
            hook = c._hook = c.prestop()
            reader = threading.Thread(target=self._read_hook, args=(c, hook), daemon=True)
            reader.start()
            try:
                hook.wait(max(0.0, started + grace - time.monotonic()))
                c.prestop_exit = hook.returncode
                c.prestop_finished = True
            except subprocess.TimeoutExpired:
                pass  # kubelet stops waiting; the hook keeps running in the container
            took = time.monotonic() - started
            c.prestop_seconds = round(took, 3)
            grace = grace - int(took)
        if turn is not None:  # a native sidecar: SIGTERM after the main containers
            turn()
            grace = self.grace - int(time.monotonic() - started)
        if grace < MIN_GRACE:
            grace = MIN_GRACE
        c.grace_after_hook = grace
        c.sigterm_at = self.rel()
        with contextlib.suppress(ProcessLookupError):
            c.proc.send_signal(signal.SIGTERM)
        if not self._wait_exit(c, time.monotonic() + grace):
            self._kill(c)
        self._reap(c)

    def _read_hook(self, c: Container, hook: subprocess.Popen[Any]) -> None:
        assert hook.stdout is not None
        for raw in hook.stdout:
            line = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            c.hook_log.append(line.rstrip("\n"))

    def delete_pod(self, app: Container, proxy: Container) -> None:
        """The deletion instant: stop both containers; return when both are gone."""
        self.t0 = time.monotonic()

        def app_side() -> None:
            self.stop_container(app, self.grace, self.t0)

        def app_gone() -> None:
            self._wait_exit(app, self.t0 + self.grace + MIN_GRACE)
            with app.cond:
                app.cond.wait_for(lambda: app.exited_at is not None,
                                  max(0.0, self.t0 + self.grace + 5 - time.monotonic()))

        def proxy_side() -> None:
            self.stop_container(proxy, self.grace, self.t0, app_gone if self.native else None)

        threads = [threading.Thread(target=app_side), threading.Thread(target=proxy_side)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
