"""Entry point: `python3 run_block.py`, with the request on stdin (see kiln_runner/channel.py).

`run_block.py --warm`: an interpreter started before its request exists. It imports what blocks
commonly need (pandas, where installed) while it waits, so the request it is handed later runs
at once; the request itself is read as without the flag."""
import sys

from kiln_runner.main import main

if __name__ == "__main__":
    if "--warm" in sys.argv[1:]:
        try:
            import pandas  # noqa: F401  (imported ahead: the block's `import pandas` is then free)
        except ImportError:
            pass
    sys.exit(main())
