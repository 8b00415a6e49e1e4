# upy-ok-file: `python -m coapy_micro` runs the host-only coapy command
"""`python -m coapy_micro ...` runs the `coapy` command (cli.py; host only)."""
import sys

from coapy_micro.cli import main

sys.exit(main())
