"""Fuzzing the input path (issue 12): hypothesis-generated YAML and JSON documents, valid
and broken (odd scalars, anchors and aliases, deep nesting, random bytes, byte-order
marks), through `--local` explain and lint and `apply --dry-run=client`. Whatever comes in:
no traceback, no Python exception leaking as the error, exit codes only as SPEC section 3
allows, bounded time per document, and `--local` refuses whatever `apply` refuses."""

from __future__ import annotations

import json
import re
import time

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubectl_meshcfg.cli import cli
from kubectl_meshcfg.core import fields

SECONDS_PER_RUN = 5.0      # generous: the machine is shared; a bomb or a hang takes far longer
PYTHON_ERROR = re.compile(r"^error: [A-Z][A-Za-z]*(Error|Exception): ")

ODD_SCALARS = ["yes", "no", "on", "Off", "y", "N", "True", "FALSE", "~", "null", "0o17",
               "0x1F", "1e3", "1e-3", ".inf", "-.Inf", ".nan", "12:30", "2001-12-14", "08",
               "+1", "-0", "0b101", "1_000", "2.0", "1e400", "9223372036854775808", "<<",
               "'q'", '"dq"', '"\\u0000"', "!!binary aGk=", "!!int 3", "!!str 4", "!!float x",
               "!!bool maybe", "!!set {a}", "!!timestamp 2001-12-14", "!custom x", "&a x",
               "*a", "*missing", "[]", "{}", "''", "'", '"', "-", "?", ":", "|", ">", "#c",
               "\t", "é", "\ufeff", "\u2028", "💥", "%YAML 1.1", "---", "...", "@x", "`x",
               "100m", "1Gi", "-5", "5s", "15001,15006", "*", "10.0.0.0/8", "misc:error"]
KEYS = sorted({key for keys in fields.OBJECTS.values() for key in keys}
              | {"exec", "command", "image", "enabled", "matchLabels", "precedence", "sleep",
                 "seconds", "httpGet", "port"})

scalar_text = st.one_of(st.sampled_from(ODD_SCALARS), st.text(max_size=12),
                        st.integers(-2**70, 2**70).map(str))
key_text = st.one_of(st.sampled_from(KEYS), st.sampled_from(ODD_SCALARS), st.text(max_size=6))


def _flow(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    mapping = st.lists(st.tuples(key_text, children), max_size=4).map(
        lambda pairs: "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}")
    sequence = st.lists(children, max_size=4).map(lambda items: "[" + ", ".join(items) + "]")
    anchored = st.tuples(st.sampled_from(["&a ", "&b ", ""]), st.one_of(mapping, sequence)).map(
        "".join)
    return st.one_of(mapping, sequence, anchored)


flow_yaml = st.recursive(scalar_text, _flow, max_leaves=24)
json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
              st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)),
                                            inner, max_size=4)),
    max_leaves=24)


def _envelope(spec: str, name: str = "fuzz", namespace: str = "dev") -> str:
    return (f"apiVersion: meshcfg.io/v1alpha1\nkind: SidecarProxyConfig\n"
            f"metadata: {{name: {name}, namespace: {namespace}}}\nspec: {spec}\n")


def _spec_at(path: tuple[str, ...], value: str) -> str:
    for key in reversed(path):
        value = f"{{{key}: {value}}}"
    return value


PLAUSIBLE = ["100m", "1Gi", "2", "0", "true", "false", "5s", "1m30s", "15001,15006", "*",
             "10.0.0.0/8", "info", "debug", "misc:error", "'x'", "{enabled: true}",
             "{exec: {command: [sh, -c, 'sleep 5']}}", "{sleep: {seconds: 3}}"]
leaf_paths = st.sampled_from([tuple(leaf.path.split(".")) for leaf in fields.LEAVES]
                             + [("proxy", "proxyMetadata", "X")])
documents: st.SearchStrategy[bytes] = st.one_of(
    st.lists(st.tuples(leaf_paths, st.sampled_from(PLAUSIBLE)), min_size=1, max_size=3).map(
        lambda pairs: "\n---\n".join(_envelope(_spec_at(p, v), name=f"p{i}")
                                      for i, (p, v) in enumerate(pairs)).encode()),
    st.builds(lambda path, value: _envelope(_spec_at(path, value)), leaf_paths,
              flow_yaml).map(str.encode),
    st.builds(_envelope, flow_yaml, scalar_text, st.sampled_from(["dev", "n", "Dev", "~"])
              ).map(str.encode),
    flow_yaml.map(str.encode),
    st.builds(lambda path, value: _envelope(_spec_at(path, json.dumps(value))), leaf_paths,
              json_value).map(str.encode),
    json_value.map(lambda value: json.dumps({"apiVersion": "meshcfg.io/v1alpha1",
                                             "kind": "SidecarProxyConfig",
                                             "metadata": {"name": "j", "namespace": "dev"},
                                             "spec": value}).encode()),
    st.builds(lambda depth, opening: _envelope(opening * depth + "x"
                                               + ("]" if opening == "[" else "}") * depth),
              st.integers(0, 1500), st.sampled_from(["[", "{a: "])).map(str.encode),
    st.builds(lambda bom, body: bom + body,
              st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"]),
              st.binary(max_size=200)),
    st.lists(flow_yaml, min_size=2, max_size=4).map(
        lambda docs: "\n---\n".join(_envelope(d) for d in docs).encode()),
)
encodings = st.sampled_from(["plain", "utf-8-sig", "utf-16"])


def _encoded(data: bytes, encoding: str) -> bytes:
    if encoding == "plain":
        return data
    try:
        return data.decode("utf-8").encode(encoding)
    except UnicodeDecodeError:
        return data


SKIPPED = "skipped (apply it with kubectl apply)"


def invoke(args: list[str], data: bytes) -> tuple[int, str]:
    start = time.monotonic()
    result = CliRunner().invoke(cli, [*args, "-f", "-"], input=data)
    elapsed = time.monotonic() - start
    assert isinstance(result.exception, SystemExit | None), repr(result.exception)
    assert elapsed < SECONDS_PER_RUN, (args, elapsed)
    assert "Traceback" not in result.stderr
    for line in result.stderr.splitlines():
        assert not PYTHON_ERROR.match(line), line
        assert len(line) < 2000, line[:200]
    return result.exit_code, result.stderr


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(documents, encodings)
def test_any_input_gives_an_allowed_exit_and_no_traceback(data: bytes, encoding: str) -> None:
    data = _encoded(data, encoding)
    explain, explain_err = invoke(["explain", "--local", "-n", "dev"], data)
    lint, lint_err = invoke(["lint", "--local", "-n", "dev"], data)
    apply, apply_err = invoke(["apply", "--dry-run=client", "-n", "dev"], data)
    assert explain in (0, 1) and lint in (0, 1, 3) and apply in (0, 1)
    for code, err in ((explain, explain_err), (lint, lint_err), (apply, apply_err)):
        if code == 1:
            errors = [line for line in err.splitlines() if not line.endswith(SKIPPED)]
            assert errors and all(line.startswith("error: ") for line in errors), err
    if apply == 1 and "objects passed to apply" not in apply_err:
        assert lint == 1 and explain == 1, (apply_err, lint_err)
    if lint == 1:
        assert explain == 1, lint_err


def test_the_generator_reaches_valid_documents() -> None:
    """The property above says something only if some generated documents are valid."""
    valid = _envelope(_spec_at(("proxy", "concurrency"), "2")).encode()
    assert invoke(["apply", "--dry-run=client", "-n", "dev"], valid)[0] == 0
    assert invoke(["lint", "--local", "-n", "dev"], valid)[0] == 0


