"""Write every golden case to ``tests/golden/NAME.json``: ``python -m tests.golden.generate
[NAME ...]`` (all cases when no name is given). See ``tests/golden/cases.py``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.golden.cases import CASES

HERE = Path(__file__).parent


def main(names: list[str]) -> None:
    for name in names or list(CASES):
        path = HERE / f"{name}.json"
        path.write_text(json.dumps(CASES[name](), indent=1) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
