"""Fail if a ``pip install --dry-run --report`` would touch the user's stack.

Usage: python .ci/check_nothing_replaced.py REPORT.json [REPORT.json ...]

Each report comes from installing the plugin into an environment that
already holds ESPnet: it must install the plugin and must not install (that
is, replace) torch, torchaudio, espnet, setuptools or numpy.
"""

import json
import re
import sys

PROTECTED = ("torch", "torchaudio", "espnet", "setuptools", "numpy")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main(paths) -> int:
    failed = False
    for path in paths:
        with open(path) as f:
            report = json.load(f)
        installs = {
            canonical(item["metadata"]["name"]): item["metadata"]["version"]
            for item in report["install"]
        }
        listed = ", ".join(f"{n} {v}" for n, v in sorted(installs.items()))
        print(f"{path}: would install {listed or 'nothing'}")
        replaced = [name for name in PROTECTED if name in installs]
        if replaced:
            print(f"{path}: would replace {', '.join(replaced)}", file=sys.stderr)
            failed = True
        if "espnet-sovits-disc" not in installs:
            print(f"{path}: the plugin itself is not in the report", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
