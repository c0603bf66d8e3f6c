"""``python -m genloom`` works like the ``genloom`` command (and under ``accelerate launch -m genloom``)."""

from .cli.main import main

main()
