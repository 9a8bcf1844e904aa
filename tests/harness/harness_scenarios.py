"""The termination scenarios: short real durations, kubelet's real rules."""

from __future__ import annotations

from typing import Any

POLL = 0.2  # the agent's default poll interval

SCENARIOS: dict[str, dict[str, Any]] = {
    # the motivating failure: a long request cut off when pilot-agent kills Envoy after D
    "none-long": {"args": ["--prestop", "none", "--request-seconds", "4",
                           "--drain-seconds", "1", "--grace-seconds", "8"]},
    # the agent removes it (G=8 >= S + D + 2 + 1)
    "agent-long": {"args": ["--prestop", "agent", "--request-seconds", "4",
                            "--drain-seconds", "1", "--grace-seconds", "8"]},
    # netstat loop, failure 1: the app closed its listener first -> returns at once (the
    # Python pilot-agent stand-in without a status listener: with the real pilot-agent,
    # its 15020 always holds `grep -v envoy`, failure 2 below)
    "netstat-listener-closed": {"args": ["--prestop", "netstat", "--pilot-agent", "standin",
                                         "--status-port", "0",
                                         "--request-seconds", "4", "--drain-seconds", "1",
                                         "--grace-seconds", "8"]},
    # netstat loop, failure 2: pilot-agent's 15020 listener is "non-envoy" -> holds until
    # kubelet gives up on the hook at G, then 2 s floor, then SIGKILL (D=3 > 2)
    "netstat-listener-open": {"args": ["--prestop", "netstat", "--request-seconds", "2",
                                       "--drain-seconds", "3", "--grace-seconds", "6"]},
    # outbound calls through the proxy: during a request, and made by the app on SIGTERM
    "agent-outbound": {"args": ["--prestop", "agent", "--outbound", "--term-call", "3",
                                "--request-seconds", "3", "--drain-seconds", "1",
                                "--grace-seconds", "8"]},
    "none-outbound": {"args": ["--prestop", "none", "--outbound", "--term-call", "3",
                               "--request-seconds", "3", "--drain-seconds", "1",
                               "--grace-seconds", "8"]},
    # idle keep-alive connections only (downstream clients, app->proxy pool, proxy->app
    # pool; the app lingers after SIGTERM): the agent returns after min drain + 2 polls
    "agent-idle": {"args": ["--prestop", "agent", "--requests", "0", "--idle-clients", "5",
                            "--app-outbound-pool", "3", "--proxy-pool", "3",
                            "--app-shutdown-delay", "6", "--min-drain", "1s",
                            "--drain-seconds", "1", "--grace-seconds", "10"]},
    # the same without admin stats: census only, the idle connections hold the agent
    # until its deadline (G - D - 2 s), never until SIGKILL
    "agent-idle-no-stats": {"args": ["--prestop", "agent", "--requests", "0",
                                     "--idle-clients", "3", "--app-outbound-pool", "2",
                                     "--app-shutdown-delay", "7", "--no-admin-stats",
                                     "--drain-seconds", "1", "--grace-seconds", "8"]},
    # a request longer than the grace period: the agent gives up in time and says so
    "agent-too-long": {"args": ["--prestop", "agent", "--request-seconds", "12",
                                "--drain-seconds", "1", "--grace-seconds", "8"]},
    # a grace period shorter than the drain: no budget at all, the agent returns at once
    "agent-grace-shorter-than-drain": {"args": ["--prestop", "agent", "--request-seconds", "2",
                                                "--drain-seconds", "5", "--grace-seconds",
                                                "3"]},
    # 1,000 concurrent connections
    "agent-1000": {"weight": 5, "args": ["--prestop", "agent", "--requests", "1000",
                                         "--request-seconds", "5", "--drain-seconds", "1",
                                         "--grace-seconds", "14"]},
    "none-1000": {"weight": 4, "args": ["--prestop", "none", "--requests", "1000",
                                        "--request-seconds", "5", "--drain-seconds", "1",
                                        "--grace-seconds", "14"]},
    # more requests than one process's file descriptors allow the proxy (2 per request):
    # 2,000 under a limit of 3,000, as 10,000 under this machine's 20,000 (the Envoy
    # stand-in spreads inbound over its worker processes as Envoy does over threads)
    "agent-2000-fd-bound": {"weight": 6, "args": ["--prestop", "agent", "--requests", "2000",
                                                  "--nofile", "3000", "--request-seconds", "10",
                                                  "--drain-seconds", "1", "--grace-seconds",
                                                  "20"]},
    # native sidecar: the proxy's turn starts when the app has exited
    "agent-native": {"args": ["--prestop", "agent", "--native-sidecar", "--request-seconds",
                              "3", "--drain-seconds", "1", "--grace-seconds", "8"]},
    "none-native": {"args": ["--prestop", "none", "--native-sidecar", "--request-seconds",
                             "3", "--drain-seconds", "1", "--grace-seconds", "8"]},
    # new connections after the deletion (a rollout: other proxies still route here for a
    # moment): the draining proxy keeps accepting, answers "Connection: close"; the
    # agent's minimum drain keeps it up meanwhile
    # (the agent's default minimum drain, 5 s: nothing to set)
    "agent-late-requests": {"args": ["--prestop", "agent",
                                     "--requests", "0", "--late-requests", "20",
                                     "--late-after", "4", "--app-shutdown-delay", "5.5",
                                     "--drain-seconds", "1", "--grace-seconds", "10"]},
    "none-late-requests": {"args": ["--prestop", "none", "--requests", "0",
                                    "--late-requests", "20", "--late-after", "4",
                                    "--app-shutdown-delay", "5.5", "--drain-seconds", "1",
                                    "--grace-seconds", "10"]},
    # the same with no minimum drain: the agent returns at once, the late ones are lost
    "agent-late-requests-no-min-drain": {"args": ["--prestop", "agent", "--min-drain", "0s",
                                                  "--requests", "0", "--late-requests", "20",
                                                  "--late-after", "4",
                                                  "--app-shutdown-delay", "5.5",
                                                  "--drain-seconds", "1", "--grace-seconds", "10"]},
    # idle keep-alives under Istio's default stats matcher (neither counter exported) and
    # under a user's own matcher: unknown, not "0 in flight": the agent holds until its
    # deadline and says why, instead of cutting requests short
    "agent-idle-istio-stats": {"args": ["--prestop", "agent", "--stats", "istio-default",
                                        "--requests", "0", "--idle-clients", "3",
                                        "--app-shutdown-delay", "7",
                                        "--drain-seconds", "1", "--grace-seconds", "8"]},
    "agent-long-user-stats": {"args": ["--prestop", "agent", "--stats", "user",
                                       "--request-seconds", "4", "--drain-seconds", "1",
                                       "--grace-seconds", "8"]},
    # kubelet's grace (eviction, node shutdown, --grace-period below the spec) shorter
    # than the one the agent was rendered with: kubelet stops waiting at G and SIGTERMs
    # pilot-agent, which closes its status port; the agent leaves at once
    "agent-eviction-shorter-grace": {"args": ["--prestop", "agent", "--agent-grace", "30",
                                              "--request-seconds", "12", "--drain-seconds", "1",
                                              "--grace-seconds", "8"]},
    # Envoy crashes mid-drain: the request is lost, and the agent says so (exit 4)
    "agent-proxy-crash": {"args": ["--prestop", "agent", "--kill-envoy-at", "1.5",
                                   "--request-seconds", "4", "--drain-seconds", "1",
                                   "--grace-seconds", "8"]},
}
