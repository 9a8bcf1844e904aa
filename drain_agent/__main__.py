import sys

from drain_agent.cli import main

sys.exit(main())
