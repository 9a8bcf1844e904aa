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
    (None, "5s", None), (60, "15s", "2s"), (7, "1500ms", "250ms"), (3, "0s", None)])
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


def test_the_contract_constants_are_the_agents() -> None:
    """render and the agent agree on the stats the agent reads, the reserve it keeps and
    the grace it assumes (each named once per package, checked here)."""
    from drain_agent.deadline import DEFAULT_GRACE_SECONDS as AGENT_GRACE
    from drain_agent.deadline import EXTRA_RESERVE_SECONDS
    from drain_agent.envoy_admin import REQUIRED_SUFFIXES
    from kubectl_meshcfg.core.model import AGENT_RESERVE

    assert render.AGENT_STATS_SUFFIXES == REQUIRED_SUFFIXES
    assert AGENT_RESERVE == EXTRA_RESERVE_SECONDS
    assert DEFAULT_GRACE_SECONDS == AGENT_GRACE


@pytest.mark.parametrize("user", [None, {"inclusionPrefixes": ["http.10."],
                                        "inclusionSuffixes": ["upstream_rq_active"]},
                                  {"inclusionSuffixes": ["downstream_cx_active"]}])
def test_render_exports_the_stats_the_agent_reads(user: dict[str, object] | None) -> None:
    import yaml

    proxy: dict[str, object] = {} if user is None else {"proxyStatsMatcher": user}
    spc = config("ns", "drain", {"proxy": proxy, "lifecycle": {"drainAgent": {"enabled": True}}})
    target = pod("ns", "p")
    rendered = render.render(target, resolve([spc], target))
    text = rendered.apply_config["metadata"]["annotations"]["proxy.istio.io/config"]
    matcher = yaml.safe_load(text)["proxyStatsMatcher"]
    kept = list((user or {}).get("inclusionSuffixes", []))  # type: ignore[call-overload]
    assert matcher["inclusionSuffixes"] == kept + [
        s for s in render.AGENT_STATS_SUFFIXES if s not in kept]
    assert matcher.get("inclusionPrefixes") == (user or {}).get("inclusionPrefixes")
    # without the agent nothing is added
    plain = config("ns", "plain", {"proxy": proxy})
    text = render.render(target, resolve([plain], target)).apply_config[
        "metadata"]["annotations"]["proxy.istio.io/config"]
    assert (yaml.safe_load(text).get("proxyStatsMatcher") or {}) == (user or {})


@pytest.mark.parametrize(("grace", "drain", "refused"), [
    (None, "5s", False), (8, "5s", False), (7, "5s", True), (8, "5900ms", False), (3, "1s", True),
    (0, "0s", True)])
def test_render_refuses_an_agent_without_time(grace: int | None, drain: str,
                                              refused: bool) -> None:
    from kubectl_meshcfg.core.errors import InvalidInput

    spc = config("ns", "drain", {"lifecycle": {"terminationDrainDuration": drain,
                                               "drainAgent": {"enabled": True}}})
    target = pod("ns", "p", grace=grace)
    if not refused:
        render.render(target, resolve([spc], target))
        return
    with pytest.raises(InvalidInput) as e:
        render.render(target, resolve([spc], target))
    [line] = e.value.lines()
    assert "Pod ns/p" in line and "spec.lifecycle.drainAgent" in line, line
    assert "has no time" in line and f"{drain}" in line, line
