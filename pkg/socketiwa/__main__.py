"""python -m socketiwa: the socketiwa command (see socketiwa.cli)."""
import sys

from .cli import main

sys.exit(main())
