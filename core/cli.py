"""The wrapper every stage's command line runs through: clear messages instead of tracebacks."""
import sys
from functools import wraps

from core.errors import PipelineError


def entry_point(main):
    """Run main(); a PipelineError prints 'error: ...' and exits 2, Ctrl-C says how to resume."""
    @wraps(main)
    def run(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except PipelineError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("\ninterrupted: finished work is saved; run the same command again to resume", file=sys.stderr)
            sys.exit(130)
    return run
