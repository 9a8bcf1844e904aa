"""The preStop command render writes is one meshcfg-drain accepts, meaning what render
meant: parsed by the agent's own parser, the grace period, drain and minimum drain come
back as the values of the effective config."""

from __future__ import annotations

import pytest
from builders import config, pod, resolve

from drain_agent.cli import build_parser
from kubectl_meshcfg.core import render
from kubectl_meshcfg.core.model import DEFAULT_GRACE_SECONDS


def agent_values(command: list[str]) -> dict[str, object]:
    assert command[0] == render.AGENT_BINARY
    parser, flags = build_parser()
    namespace = parser.parse_args(command[1:])
    assert namespace.command == "prestop"
    return flags["prestop"].convert(namespace)


@pytest.mark.parametrize(("grace", "drain", "minimum"), [
    (None, "5s", None), (60, "15s", "2s"), (7, "1500ms", "250ms"), (0, "0s", None)])
def test_render_writes_flags_the_agent_reads_back(grace: int | None, drain: str,
                                                  minimum: str | None) -> None:
    agent: dict[str, object] = {"enabled": True}
    if minimum:
        agent["minDrainDuration"] = minimum
    spc = config("ns", "drain", {"lifecycle": {"terminationDrainDuration": drain,
                                               "drainAgent": agent}})
    target = pod("ns", "p", grace=grace)
    rendered = render.render(target, resolve([spc], target))
    [proxy] = rendered.apply_config["spec"]["containers"]
    values = agent_values(proxy["lifecycle"]["preStop"]["exec"]["command"])
    assert values["grace_period"] == (DEFAULT_GRACE_SECONDS if grace is None else grace)
    assert values["termination_drain_duration"] == pytest.approx(
        {"5s": 5, "15s": 15, "1500ms": 1.5, "0s": 0}[drain])
    command = proxy["lifecycle"]["preStop"]["exec"]["command"]
    if minimum is None:      # unset: the agent's own default minimum applies
        assert not any(arg.startswith("--min-drain") for arg in command)
    else:
        assert values["min_drain"] == pytest.approx({"2s": 2, "250ms": 0.25}[minimum])
    env = {e["name"] for e in proxy["env"]}
    assert {"POD_NAME", "POD_NAMESPACE"} <= env      # the agent's --pod-name/--pod-namespace
