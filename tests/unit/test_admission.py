"""Admission params are render's output, precomputed: for any set of configs and any pod
labels, the entry the policy's CEL picks (first matching selector, oldest config first, then
the selector-less entry) carries exactly what render writes for a pod with those labels."""

from __future__ import annotations

from typing import Any

from builders import config, pod
from hypothesis import given, settings
from hypothesis import strategies as st

from kubectl_meshcfg.core import admission
from kubectl_meshcfg.core import annotations as ann
from kubectl_meshcfg.core.kinds import BY_NAME
from kubectl_meshcfg.core.render import CONFIG_HASH, render
from kubectl_meshcfg.core.resolve import Resolver

LABELS = st.dictionaries(st.sampled_from(["app", "tier", "team"]), st.sampled_from(["a", "b"]),
                         max_size=3)
SPECS = st.fixed_dictionaries({}, optional={
    "proxy": st.fixed_dictionaries({}, optional={
        "logLevel": st.sampled_from(["info", "debug", "error"]),
        "concurrency": st.integers(1, 8),
        "resources": st.fixed_dictionaries({"limits": st.fixed_dictionaries(
            {}, optional={"cpu": st.sampled_from(["1", "3", "500m"])})})}),
    "traffic": st.fixed_dictionaries({}, optional={
        "excludeInboundPorts": st.sampled_from(["8080", "9090,9091"])}),
    "lifecycle": st.fixed_dictionaries({}, optional={
        "drainAgent": st.fixed_dictionaries({"enabled": st.booleans()})}),
})


@st.composite
def config_sets(draw: st.DrawFn) -> list[Any]:
    result = [config("istio-system", "global", draw(SPECS), "2026-01-01T00:00:00Z"),
              config("ai", "ns", draw(SPECS), "2026-01-02T00:00:00Z")]
    for i in range(draw(st.integers(0, 3))):
        selector = draw(LABELS.filter(bool))
        result.append(config("ai", f"w{i}", {"selector": {"matchLabels": selector},
                                             **draw(SPECS)}, f"2026-01-0{3 + i}T00:00:00Z"))
    return result


@settings(max_examples=150, deadline=None)
@given(config_sets(), LABELS, st.sampled_from(["annotation-first", "workload-first"]))
def test_the_entry_cel_picks_is_what_render_writes(configs: list[Any], labels: dict[str, str],
                                                   precedence: str) -> None:
    resolver = Resolver(configs, precedence=precedence)
    params = admission.params_for(resolver, "ai", "img:1")
    target = pod("ai", "p", labels)
    template = BY_NAME["Pod"].template_of(render(target, resolver.resolve(target), "img:1")
                                          .apply_config)
    entry = admission.entry_for(params, labels)
    expected = dict(template["metadata"]["annotations"])
    assert entry["configHash"] == expected.pop(CONFIG_HASH)
    assert expected.pop(ann.MANAGED_ANNOTATIONS) == ",".join(entry["annotationKeys"])
    assert entry["annotations"] == expected
    for key in ("initContainers", "containers", "volumes"):
        assert entry.get(key, []) == template["spec"].get(key, [])


def test_entries_are_oldest_first_and_end_with_the_selectorless_one() -> None:
    configs = [config("ai", "new", {"selector": {"matchLabels": {"a": "1"}}},
                      "2026-02-01T00:00:00Z"),
               config("ai", "old", {"selector": {"matchLabels": {"a": "1"}}},
                      "2026-01-01T00:00:00Z")]
    params = admission.params_for(Resolver(configs), "ai", "img:1")
    assert [e.get("source") for e in params["spec"]["entries"]] == [
        "ai/old", "ai/new", None]


def test_the_grace_argument_is_located_for_the_policy_to_replace() -> None:
    configs = [config("ai", "ns", {"lifecycle": {"drainAgent": {"enabled": True}}})]
    entry = admission.params_for(Resolver(configs), "ai", "img:1")["spec"]["entries"][-1]
    command = entry["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert command[entry["graceArgIndex"]] == "--grace-period=30s"


def test_why_a_pod_is_left_alone() -> None:
    entry = admission.params_for(Resolver([]), "ai", "img:1")["spec"]["entries"][-1]
    assert admission.skip_reason(pod(annotations={ann.PROXY_CONFIG: "concurrency: 1"}), entry) \
        == admission.SKIP_PROXY_CONFIG
    assert "proxyCPU" in str(admission.skip_reason(
        pod(annotations={"sidecar.istio.io/proxyCPU": "1"}), entry))
    assert admission.skip_reason(pod(annotations={"sidecar.istio.io/logLevel": "debug"}),
                                 entry) is None
    assert admission.SHARED_KEYS == ("sidecar.istio.io/proxyCPU", "sidecar.istio.io/proxyCPULimit",
                                     "sidecar.istio.io/proxyMemory",
                                     "sidecar.istio.io/proxyMemoryLimit")


def test_admission_render_local_prints_static_objects_then_params_per_namespace() -> None:
    from pathlib import Path

    import yaml
    from click.testing import CliRunner

    from kubectl_meshcfg.cli import cli

    examples = str(Path(__file__).resolve().parents[2] / "examples")
    run = CliRunner().invoke(cli, ["admission", "render", "--local", "-f", examples])
    assert run.exit_code == 0, run.output
    docs = list(yaml.safe_load_all(run.stdout))
    assert [d["kind"] for d in docs[:5]] == ["CustomResourceDefinition", "MutatingAdmissionPolicy",
                                             *["MutatingAdmissionPolicyBinding"] * 3]
    assert [d["metadata"]["namespace"] for d in docs[5:]] == [
        "ai", "dev", "istio-system", "payments", "prod"]
    ai = docs[5]["spec"]["entries"]
    assert ai[0]["source"] == "ai/perf-sensitive"     # the oldest workload config first
    assert "source" not in ai[-1] and "selector" not in ai[-1]
    static = CliRunner().invoke(cli, ["admission", "render", "--static-only", "--local", "-f",
                                      examples])
    assert list(yaml.safe_load_all(static.stdout)) == docs[:5]
