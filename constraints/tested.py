"""Print the constraints file of the tested combination for this Python.

    pip install -e '.[test]' -c "$(python constraints/tested.py)"

Each file pins exactly what CI installed and tested for one leg (see the
README's tested matrix). A Python without a tested combination is an error
naming the ones there are.
"""

import sys
from pathlib import Path

TESTED = {
    (3, 11): "py311-espnet202511.txt",
    (3, 12): "py312-espnet202611.txt",
}


def main() -> int:
    version = sys.version_info[:2]
    if version not in TESTED:
        tested = ", ".join(f"{major}.{minor}" for major, minor in TESTED)
        print(
            f"constraints/tested.py: no tested combination for Python "
            f"{version[0]}.{version[1]} (tested: {tested}); use one of those, or "
            f"install without -c to let pip choose within the declared ranges",
            file=sys.stderr,
        )
        return 1
    print(Path(__file__).resolve().parent / TESTED[version])
    return 0


if __name__ == "__main__":
    sys.exit(main())
