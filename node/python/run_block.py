"""Entry point: `python3 run_block.py`, with the request on stdin (see kiln_runner/channel.py)."""
import sys

from kiln_runner.main import main

if __name__ == "__main__":
    sys.exit(main())
