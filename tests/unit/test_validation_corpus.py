"""Every boundary value of tests/corpus/values.yaml through the Python validation.

Good values must parse; bad values must raise InvalidInput naming the field where the value
sits (or a field below it) with the file, document and object of the input.
"""

from __future__ import annotations

import pytest
from corpuslib import Case, load_values, value_cases

from kubectl_meshcfg.core.errors import InvalidInput
from kubectl_meshcfg.core.model import Origin, parse_config

CASES = value_cases()
GOOD = [case for case in CASES if case.good]
BAD = [case for case in CASES if not case.good]


def test_corpus_covers_every_format() -> None:
    blocks = set(load_values()["formats"])
    required = {"quantity", "ports-include", "ports-exclude", "cidrs-include", "cidrs-exclude",
                "duration", "logLevel", "componentLogLevel", "concurrency", "bool", "selector",
                "handler", "keyProvider", "statsMatcher", "drainAgent", "metadata",
                "precedence", "unknown-fields", "apiVersion", "kind", "name",
                "lifecycle-exclusive"}
    assert required <= blocks
    assert len(GOOD) > 150 and len(BAD) > 350


@pytest.mark.parametrize("case", GOOD, ids=[c.id for c in GOOD])
def test_good_value_is_accepted(case: Case) -> None:
    try:
        parse_config(case.document, Origin("corpus.yaml", 3), "default")
    except InvalidInput as invalid:
        pytest.fail(f"rejected: {invalid}")


@pytest.mark.parametrize("case", BAD, ids=[c.id for c in BAD])
def test_bad_value_is_rejected_naming_the_field(case: Case) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_config(case.document, Origin("corpus.yaml", 3), "default")
    problems = caught.value.problems
    named = [loc.field for loc, _ in problems]
    assert any(f == case.path or (f or "").startswith(case.path + ".") for f in named), named
    for loc, reason in problems:
        assert (loc.file, loc.document) == ("corpus.yaml", 3)
        assert loc.obj and loc.obj.startswith(("SidecarProxyConfig default/", "ProxyConfig",
                                                "sidecarproxyconfig", "SidecarProxyConfigs"))
        assert reason and "\n" not in reason
