"""`python -m vrbench`: the command line (as torchrun starts it: `torchrun ... -m vrbench`)."""

from vrbench.cli import run

run()
