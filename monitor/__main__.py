"""`python -m monitor` is the `monitor` command."""

from monitor.cli import entry

if __name__ == "__main__":  # not when a worker process imports the main module
    entry()
