"""Placeholder CLI; replaced by the core issue."""

import sys


def main() -> int:
    print("kubectl-meshcfg: not built yet", file=sys.stderr)
    return 1
