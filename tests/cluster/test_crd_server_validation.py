"""The generated CRD on a real kube-apiserver: it is accepted (CEL cost budget included), and
a plain `kubectl apply` agrees with the Python validation on every corpus value (spec nulls
aside: plain kubectl apply prunes them, meshcfg's server-side apply and Python reject them;
tests/cluster/test_local_matches_server.py sends what meshcfg's apply sends).

All documents go through one `kubectl apply --dry-run=server` (kubectl's default
`--validate=strict`, so unknown fields are errors, not silently pruned). Values are sent as
JSON so that the server sees exactly the value the Python validation saw.
"""

from __future__ import annotations

import copy
import json
import random
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from clusterlib import KubeCluster, poll
from corpuslib import CORPUS, Group, bad_documents, place, value_groups

from kubectl_meshcfg.app import loader
from kubectl_meshcfg.core import crd
from kubectl_meshcfg.core.errors import InvalidInput
from kubectl_meshcfg.core.model import API_GROUP, Origin, parse_config

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / crd.MANIFEST_PATH
_CHUNK_START = re.compile(r"^(Error from server|error:|resource mapping not found|Error )")


@pytest.fixture(scope="module")
def installed_crd(kube_cluster: KubeCluster) -> KubeCluster:
    """Install (or update) the committed CRD; the server itself checks it is structural and
    that every CEL rule fits the cost budget, else this apply fails."""
    kube_cluster.kubectl("apply", "-f", str(MANIFEST))
    kube_cluster.wait_crd_established(crd.CRD_NAME)

    def served() -> bool:
        proc = kube_cluster.kubectl("get", "sidecarproxyconfigs", "-A", check=False)
        return proc.returncode == 0

    poll(served, timeout=30, what="the SidecarProxyConfig resource to be served")
    return kube_cluster


def error_chunks(stderr: str) -> list[str]:
    """kubectl's stderr split into one text per reported error."""
    chunks: list[str] = []
    for line in stderr.splitlines():
        if _CHUNK_START.match(line) or not chunks:
            chunks.append(line)
        else:
            chunks[-1] += "\n" + line
    return chunks


def accepted_names(stdout: str) -> set[str]:
    pattern = re.compile(rf"^sidecarproxyconfig\.{re.escape(API_GROUP)}/(\S+) "
                         r"(?:created|configured|unchanged)")
    return {m.group(1) for line in stdout.splitlines() if (m := pattern.match(line))}


def apply_dry_run(cluster: KubeCluster, namespace: str, docs: list[dict[str, Any]],
                  processes: int = 2) -> tuple[set[str], list[str]]:
    """`kubectl apply --dry-run=server` of every document (in a few parallel kubectl
    processes, each sending one stream); the names it accepted and its errors."""
    def run(part: list[dict[str, Any]]) -> tuple[str, str]:
        stream = "\n".join(json.dumps(doc, ensure_ascii=False) for doc in part)
        proc = cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-",
                               input=stream, check=False, timeout=300)
        return proc.stdout, proc.stderr

    parts = [docs[i::processes] for i in range(processes)]
    with ThreadPoolExecutor(processes) as pool:
        results = list(pool.map(run, parts))
    accepted = set().union(*(accepted_names(out) for out, _ in results))
    return accepted, [chunk for _, err in results for chunk in error_chunks(err)]


def _named(chunk: str, name: str) -> bool:
    return f'"{name}" is invalid' in chunk or f'name: "{name}"' in chunk


def _mentions(chunk: str, path: str) -> bool:
    """Does a server error name this field? (A wrong apiVersion fails in kubectl's mapping
    of the kind, before the server sees the object.)"""
    if path in ("apiVersion", "kind") and "no matches for kind" in chunk:
        return True
    return f"{path}:" in chunk or f'"{path}"' in chunk or f"{path}." in chunk


def test_crd_is_accepted_and_served(installed_crd: KubeCluster) -> None:
    got = installed_crd.get_json("crd", crd.CRD_NAME)
    assert got["spec"]["names"]["shortNames"] == ["spc"]
    conditions = {c["type"]: c["status"] for c in got["status"]["conditions"]}
    assert conditions.get("Established") == "True"
    assert conditions.get("NamesAccepted") == "True"
    columns = [c["name"] for c in got["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns == ["Selector", "Precedence", "Drain", "Age"]


def test_server_and_python_agree_on_every_corpus_value(installed_crd: KubeCluster,
                                                       test_namespace: str) -> None:
    groups = value_groups()
    by_name: dict[str, Group] = {}
    good: dict[str, bool] = {}    # plain kubectl apply prunes spec nulls first
    docs = []
    for i, group in enumerate(groups):
        doc = copy.deepcopy(group.document)
        if not group.names_object:
            doc["metadata"]["name"] = f"c-{i:04d}"
        by_name[name := str(doc["metadata"]["name"])] = group
        docs.append(doc)
        assert python_accepts(doc) == group.good, group.id
        good[name] = python_accepts(without_spec_nulls(doc))
    assert len(by_name) == len(groups)
    assert any(group.good != good[name] for name, group in by_name.items())
    accepted, chunks = apply_dry_run(installed_crd, test_namespace, docs)

    wrongly_rejected = [g.id for n, g in by_name.items() if good[n] and n not in accepted]
    wrongly_accepted = [g.id for n, g in by_name.items() if not good[n] and n in accepted]
    assert not wrongly_rejected, f"server rejects values Python accepts: {wrongly_rejected}"
    assert not wrongly_accepted, f"server accepts values Python rejects: {wrongly_accepted}"

    # Every rejection names every field: through the object's name where the server's
    # message carries it, else (strict decoding, kind mapping) one nameless error per group.
    nameless = [chunk for chunk in chunks if not any(_named(chunk, n) for n in by_name)]
    unmatched = []
    for name, group in by_name.items():
        if good[name]:
            continue
        mine = [chunk for chunk in chunks if _named(chunk, name)]
        if not mine:
            hit = next((c for c in nameless if all(_mentions(c, p) for p in group.paths)),
                       None)
            if hit is not None:
                nameless.remove(hit)
                mine = [hit]
        if not all(any(_mentions(chunk, path) for chunk in mine) for path in group.paths):
            unmatched.append((group.id, mine))
    assert not unmatched, f"server errors that do not name the field: {unmatched}"
    assert not nameless, f"errors for no corpus case: {nameless}"


def without_spec_nulls(doc: dict[str, Any]) -> dict[str, Any]:
    """What a client-side `kubectl apply` leaves of a document: the API server prunes null
    fields of the spec before validating (server-side apply rejects them instead)."""
    def prune(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: prune(v) for k, v in value.items() if v is not None}
        return value
    return {k: prune(v) if k == "spec" else v for k, v in doc.items()
            if k != "spec" or v is not None}


def python_accepts(doc: dict[str, Any]) -> bool:
    try:
        parse_config(doc, Origin("corpus", 1), "default")
    except InvalidInput:
        return False
    return True


def test_every_bad_document_is_rejected_by_plain_kubectl_apply(
        installed_crd: KubeCluster, test_namespace: str) -> None:
    """The whole-document corpus as users would apply it (YAML files, kubectl's own parser):
    only the documents named valid-* are accepted, and kubectl's error for each file names
    the field the Python error names."""
    docs = bad_documents()
    args = [arg for doc in docs for arg in ("-f", str(doc.path))]
    proc = installed_crd.kubectl("apply", "--dry-run=server", "-n", test_namespace, *args,
                                 check=False, timeout=120)
    assert proc.returncode != 0
    accepted = accepted_names(proc.stdout)
    assert accepted and all(name.startswith("valid-") for name in accepted), accepted

    # kubectl names the file in every error; cut stderr at each file name
    paths = sorted((str(doc.path) for doc in docs), key=len, reverse=True)
    marks = sorted((m.start(), path) for path in paths
                   for m in re.finditer(re.escape(path), proc.stderr))
    texts: dict[str, str] = {}
    for i, (start, path) in enumerate(marks):
        stop = marks[i + 1][0] if i + 1 < len(marks) else len(proc.stderr)
        texts[path] = texts.get(path, "") + proc.stderr[start:stop]
    missing = []
    for doc in docs:
        text = texts.get(str(doc.path), "")
        fields = [f.strip(": ") for f in doc.fragments if f.startswith(": ")]
        if not text or not all(_server_names(text, field) for field in fields):
            missing.append((doc.id, fields, text))
    assert not missing, missing


def _server_names(text: str, field: str) -> bool:
    if field == "metadata.name":
        return "name may not be empty" in text or "metadata.name" in text
    return _mentions(text, field) or (
        field.startswith("spec.proxy.proxyMetadata.") and "spec.proxy.proxyMetadata" in text)


def test_unknown_fields_are_pruned_without_strict_validation(installed_crd: KubeCluster,
                                                              test_namespace: str) -> None:
    """What this API server does with an unknown field (see docs/validation.md): kubectl's
    default strict validation and server-side apply reject it; client-side apply with
    --validate=warn or --validate=false gets it pruned (a structural schema prunes)."""
    doc = json.dumps({"apiVersion": "meshcfg.io/v1alpha1", "kind": "SidecarProxyConfig",
                      "metadata": {"name": "pruned"}, "spec": {"proxy": {"concurency": 2}}})

    def apply(*flags: str) -> subprocess.CompletedProcess[str]:
        return installed_crd.kubectl("apply", "--dry-run=server", "-n", test_namespace,
                                     *flags, "-f", "-", input=doc, check=False)

    strict = apply()
    assert strict.returncode == 1
    assert 'strict decoding error: unknown field "spec.proxy.concurency"' in strict.stderr
    for flags in (("--server-side",), ("--server-side", "--validate=false")):
        ssa = apply(*flags)
        assert ssa.returncode == 1, flags
        assert ".spec.proxy.concurency: field not declared in schema" in ssa.stderr
    warn = apply("--validate=warn", "-o", "json")
    assert warn.returncode == 0
    assert 'unknown field "spec.proxy.concurency"' in warn.stderr
    assert json.loads(warn.stdout)["spec"] == {"proxy": {}}
    lax = apply("--validate=false", "-o", "json")
    assert lax.returncode == 0 and lax.stderr == ""
    assert json.loads(lax.stdout)["spec"] == {"proxy": {}}


def _flow(path: str, raw: str) -> str:
    """`a.b.c` and a raw scalar as nested flow mappings: {a: {b: {c: RAW}}} (spec level)."""
    text = raw
    for part in reversed(path.split(".")[1:]):
        text = f"{{{part}: {text}}}"
    return text


def test_yaml_scalars_read_as_kubectl_reads_them(installed_crd: KubeCluster,
                                                 test_namespace: str) -> None:
    """Unquoted scalars (y, 1e3, 0o17, 12:30, 2.0, ...) at fields of every type, as raw YAML
    through plain kubectl and through the --local loader: same verdict for each (spec nulls
    such as `~` pruned first, as plain kubectl apply does)."""
    corpus = yaml.safe_load((CORPUS / "yaml-scalars.yaml").read_text(encoding="utf-8"))
    texts: dict[str, str] = {}
    for raw in corpus["expect"]:
        for path in corpus["fields"]:
            name = f"y-{len(texts):04d}"
            texts[name] = (f"apiVersion: meshcfg.io/v1alpha1\nkind: SidecarProxyConfig\n"
                           f"metadata:\n  name: {name}\nspec: {_flow(path, raw)}\n")
    stream = "---\n" + "---\n".join(texts.values())
    proc = installed_crd.kubectl("apply", "--dry-run=server", "-n", test_namespace,
                                 "-f", "-", input=stream, check=False, timeout=300)
    accepted = accepted_names(proc.stdout)
    disagree = []
    for name, text in texts.items():
        try:
            [(origin, doc)] = list(loader._parse_stream("corpus", text))
            parse_config(without_spec_nulls(doc), origin, "default")
            python = True
        except InvalidInput:
            python = False
        if python != (name in accepted):
            disagree.append((text.splitlines()[-1], "python", python, "server", not python))
    assert not disagree, disagree
    assert accepted and len(accepted) < len(texts)


def _random_values(seed: int = 20261125, per_field: int = 25) -> list[tuple[str, Any]]:
    """Deterministic near-miss strings for each string format (beyond the hand-written
    corpus): built from the characters that matter to each format."""
    rnd = random.Random(seed)

    def text(alphabet: str, low: int, high: int) -> str:
        return "".join(rnd.choice(alphabet) for _ in range(rnd.randint(low, high)))

    def octet() -> str:
        return str(rnd.choice([0, 1, 10, 127, 255, 256, 300, rnd.randint(0, 999)]))

    def cidr() -> str:
        if rnd.random() < 0.5:
            address = ".".join(octet() for _ in range(rnd.choice([3, 4, 4, 4, 5])))
        else:
            address = text("0123456789abcdefABCDEF::::.", 1, 12)
        prefix = rnd.choice(["", "/", f"/{rnd.randint(0, 140)}", "/0", "/32", "/128", "/08"])
        return address + prefix

    makers: dict[str, Any] = {
        "spec.traffic.excludeInboundPorts": lambda: text("0123456789, *+-", 0, 12),
        "spec.traffic.includeOutboundPorts": lambda: text("0123456789, *", 0, 12),
        "spec.traffic.excludeOutboundIPRanges": lambda: ",".join(
            cidr() for _ in range(rnd.randint(1, 3))),
        "spec.traffic.includeOutboundIPRanges": lambda: rnd.choice(
            [cidr(), "*", " *", cidr() + ", " + cidr()]),
        "spec.lifecycle.terminationDrainDuration": lambda: text("0123456789.hmsun -+", 1, 8),
        "spec.proxy.resources.limits.cpu": lambda: text("0123456789.eEkKMGimnu+- ", 1, 7),
        "spec.proxy.componentLogLevel": lambda: ",".join(
            f"{text('abmisc_0-', 0, 5)}{rnd.choice([':', '', '::'])}"
            f"{rnd.choice(['error', 'debug', 'warn', 'off', 'Info', ''])}"
            for _ in range(rnd.randint(1, 3))),
        "spec.selector.matchLabels.app": lambda: text("aZ09-_./ ", 0, 8),
        "spec.proxy.proxyMetadata.K": lambda: text("aZ09-_./ =", 0, 6),
    }
    values = []
    for path, make in makers.items():
        for _ in range(per_field):
            values.append((path, make()))
    for _ in range(per_field):   # label keys and environment variable names
        values.append(("spec.selector.matchLabels", {text("aZ09-_./", 1, 10): "v"}))
        values.append(("spec.proxy.proxyMetadata", {text("aZ09-_.=/", 1, 8): "v"}))
    return values


def test_random_near_miss_values_agree(installed_crd: KubeCluster,
                                       test_namespace: str) -> None:
    base = {"apiVersion": "meshcfg.io/v1alpha1", "kind": "SidecarProxyConfig",
            "metadata": {"name": "x"}, "spec": {}}
    docs, expected = [], {}
    for i, (path, value) in enumerate(_random_values()):
        doc = place(base, path, value)
        doc["metadata"]["name"] = name = f"r-{i:04d}"
        docs.append(doc)
        expected[name] = (path, value, python_accepts(doc))
    accepted, _ = apply_dry_run(installed_crd, test_namespace, docs)
    disagree = [(path, value, "python", ok) for name, (path, value, ok) in expected.items()
                if ok != (name in accepted)]
    assert not disagree, disagree
    verdicts = {ok for _, _, ok in expected.values()}
    assert verdicts == {True, False}
