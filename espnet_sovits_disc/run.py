"""Run a Python module or script with the plugin registered in ESPnet.

For unmodified ESPnet recipes, which call ``${python} -m espnet2.bin.xxx``::

    ./tts.sh --python "python -m espnet_sovits_disc.run" ...

Usage, like the interpreter's own::

    python -m espnet_sovits_disc.run -m espnet2.bin.tts_inference ARGS...
    python -m espnet_sovits_disc.run path/to/script.py ARGS...
    python -m espnet_sovits_disc.run -c "python code" ARGS...

``espnet2.bin.gan_tts_train`` runs as ``espnet_sovits_disc.bin.gan_tts_train``:
the same task plus ``--discriminator_type``/``--discriminator_conf``, and its
multi-GPU workers import the plugin when they unpickle the task, so they
register too.
"""

import runpy
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from espnet_sovits_disc import register

SUBSTITUTES = {
    "espnet2.bin.gan_tts_train": "espnet_sovits_disc.bin.gan_tts_train",
}

USAGE = (
    "usage: python -m espnet_sovits_disc.run (-m MODULE | -c CODE | SCRIPT) "
    "[ARGS...]"
)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Register the plugin, then run what ``argv`` names as ``__main__``.

    As with the interpreter, ``sys.argv`` becomes the arguments after the
    module, code or script, and a script's directory leads ``sys.path``.

    Args:
        argv (Optional[Sequence[str]]): ``-m MODULE ARGS``, ``-c CODE ARGS`` or
            ``SCRIPT ARGS``; ``None`` reads ``sys.argv[1:]``.

    Raises:
        SystemExit: With the usage message if nothing to run is given.

    """
    argv: List[str] = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] in ("-m", "-c") and len(argv) < 2):
        raise SystemExit(USAGE)
    register()
    if argv[0] == "-m":
        module = SUBSTITUTES.get(argv[1], argv[1])
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    elif argv[0] == "-c":
        sys.argv = ["-c", *argv[2:]]
        exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__"})
    else:
        sys.argv = list(argv)
        sys.path.insert(0, str(Path(argv[0]).resolve().parent))
        runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
