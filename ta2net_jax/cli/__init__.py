"""The `ta2net` command line: `main.py` builds the parser and dispatches; `commands.py` holds the handlers.
The only package that knows argparse."""
