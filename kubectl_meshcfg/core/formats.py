"""Value formats shared by the CRD schema, offline validation and Istio annotations.

Each checker returns None when the value is valid, else a short reason. Values are
always given as the user wrote them; `normalise_*` turns them into the form that
explain reports (lists without spaces, quantities as strings).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from .bounded import shown

LOG_LEVELS = ("trace", "debug", "info", "warning", "error", "critical", "off")
PRECEDENCES = ("annotation-first", "workload-first")

QUANTITY_RE = re.compile(
    r"^(?P<num>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
            "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
            "P": Decimal("1e15"), "E": Decimal("1e18")}

DURATION_RE = re.compile(r"^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|ms|s|m|h)"
                         r"(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|ms|s|m|h))*$")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                  "h": 3600.0}

COMPONENT_LOG_RE = re.compile(r"^[a-z_0-9]+:[a-z]+(?:,[a-z_0-9]+:[a-z]+)*$")
LABEL_VALUE_RE = re.compile(r"^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
LABEL_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
# As Kubernetes' IsDNS1123Subdomain: 253 characters in all, no per-label length limit.
_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
DNS_SUBDOMAIN_RE = re.compile(rf"^{_DNS_LABEL}(?:\.{_DNS_LABEL})*$")
# As IsDNS1123Label (namespace names): lowercase, at most 63 characters.
DNS_LABEL_RE = re.compile(rf"^(?=.{{1,63}}$){_DNS_LABEL}$")
ENV_NAME_RE = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")

_PORT_RE = re.compile(r"[1-9][0-9]{0,4}")   # ASCII digits, no leading zero

MAX_PORT_LIST = 1024      # characters; bounds the CEL cost of the list rules
MAX_CIDR_LIST = 2048
MAX_PORTS = 128
MAX_CIDRS = 128
MAX_QUANTITY = 64         # characters
MAX_DURATION = 64
MAX_COMPONENT_LOG = 1024
MAX_METADATA_KEYS = 64    # proxyMetadata entries
MAX_METADATA_VALUE = 4096
MAX_LABELS = 64           # selector matchLabels entries
MAX_GO_DURATION = 9223372036.854775807   # seconds: Go's time.Duration is int64 nanoseconds


def parse_quantity(text: str) -> Decimal | None:
    """The quantity's value in base units (cores, bytes), or None when malformed."""
    match = QUANTITY_RE.fullmatch(text)
    if match is None:
        return None
    try:
        number = Decimal(match["num"])
    except InvalidOperation:
        return None
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    return number * (Decimal(10) ** int(suffix[1:]))


def check_quantity(value: object) -> str | None:
    text = scalar_text(value)
    # a float reaches the API server as JSON: an integer only when integral and < 1e21
    if text is None or isinstance(value, float) and not (
            value.is_integer() and abs(value) < 1e21):
        return "must be a Kubernetes quantity such as 500m or 1Gi (quote fractions: \"1.5\")"
    if len(text) > MAX_QUANTITY:
        return f"is longer than {MAX_QUANTITY} characters"
    parsed = parse_quantity(text)
    if parsed is None:
        return f"{shown(text)} is not a Kubernetes quantity (examples: 500m, 2, 1Gi)"
    if parsed < 0:
        return f"{shown(text)} is negative"
    return None


def parse_duration(text: str) -> float | None:
    """Seconds of a Go duration string (as time.ParseDuration), or None when malformed."""
    if text == "0":
        return 0.0
    if not DURATION_RE.fullmatch(text):
        return None
    seconds = sum(float(n) * _DURATION_UNIT[u] for n, u in _DURATION_PART.findall(text))
    return seconds if seconds <= MAX_GO_DURATION else None


def check_duration(value: object) -> str | None:
    if not isinstance(value, str):
        return "must be a Go duration string such as 15s or 1m30s"
    if len(value) > MAX_DURATION:
        return f"is longer than {MAX_DURATION} characters"
    if parse_duration(value) is None:
        return f"{shown(value)} is not a Go duration (examples: 5s, 1m30s, 250ms)"
    return None


def split_list(text: str) -> list[str]:
    """Items of an Istio comma-separated list, spaces removed; '' gives []."""
    compact = text.replace(" ", "")
    return [item for item in compact.split(",")] if compact else []


def check_port_list(value: object, allow_star: bool) -> str | None:
    return _check_list(value, allow_star, example='ports such as "80,443"',
                       max_chars=MAX_PORT_LIST, max_items=MAX_PORTS, items="ports",
                       item_problem=_port_problem)


def check_cidr_list(value: object, allow_star: bool) -> str | None:
    return _check_list(value, allow_star, example='CIDRs such as "10.96.0.0/12"',
                       max_chars=MAX_CIDR_LIST, max_items=MAX_CIDRS, items="ranges",
                       item_problem=_cidr_problem)


def _port_problem(item: str) -> str | None:
    if _PORT_RE.fullmatch(item) and int(item) <= 65535:
        return None
    return f"{shown(item)} is not a port (1-65535)"


def _cidr_problem(item: str) -> str | None:
    return None if is_cidr(item) else f"{shown(item)} is not a CIDR such as 10.0.0.0/8 or fd00::/8"


def _check_list(value: object, allow_star: bool, *, example: str, max_chars: int,
                max_items: int, items: str, item_problem: Callable[[str], str | None]
                ) -> str | None:
    if not isinstance(value, str):
        return f"must be a string of comma-separated {example}"
    if len(value) > max_chars:
        return f"is longer than {max_chars} characters"
    if _inner_space(value):
        return "items must not contain spaces (spaces are only allowed around commas)"
    listed = split_list(value)
    if listed == ["*"]:
        return None if allow_star else "'*' is only allowed in include fields"
    if len(listed) > max_items:
        return f"lists more than {max_items} {items}"
    for item in listed:
        if item == "*":
            return ("'*' must stand alone" if allow_star
                    else "'*' is only allowed in include fields")
        if problem := item_problem(item):
            return problem
    return None


def _inner_space(text: str) -> bool:
    return any(" " in item.strip(" ") for item in text.split(","))


def is_cidr(text: str) -> bool:
    address, slash, prefix = text.partition("/")
    if not slash or not prefix.isdigit() or prefix != str(int(prefix)):
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return False        # as Kubernetes' isCIDR: no IPv4-mapped IPv6 (::ffff:a.b.c.d)
    return int(prefix) <= ip.max_prefixlen and "%" not in address


def port_set(text: str) -> set[int] | None:
    """Ports of a valid list; None means '*' (all ports)."""
    items = split_list(text)
    if items == ["*"]:
        return None
    return {int(item) for item in items}


def check_log_level(value: object) -> str | None:
    if value in LOG_LEVELS:
        return None
    return f"{shown(value)} is not a log level ({'|'.join(LOG_LEVELS)})"


def check_component_log_level(value: object) -> str | None:
    if isinstance(value, str) and len(value) > MAX_COMPONENT_LOG:
        return f"is longer than {MAX_COMPONENT_LOG} characters"
    if not isinstance(value, str) or not COMPONENT_LOG_RE.fullmatch(value.replace(" ", "")):
        return f"{shown(value)} is not a list of component:level pairs such as misc:error,upstream:debug"
    for pair in value.replace(" ", "").split(","):
        level = pair.split(":", 1)[1]
        if level not in LOG_LEVELS:
            return f"{shown(pair)} has an unknown level ({'|'.join(LOG_LEVELS)})"
    return None


def scalar_text(value: object) -> str | None:
    """A YAML scalar as the string Kubernetes would store (int-or-string fields)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return repr(value)
    return None


def as_bool(value: object) -> bool | None:
    """A boolean, or a string Istio accepts as one ("true"/"false"), else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def as_int(value: object) -> int | None:
    """An integer, or a string of digits, else None (booleans are not integers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None
