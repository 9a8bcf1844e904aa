"""Entry point of meshcfg-drain (placeholder until the agent issue lands)."""

import sys


def main() -> int:
    print("meshcfg-drain: not built yet", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
