"""List the plugin's discriminators as ESPnet builds them from its registry.

Usage: ``python -m espnet_sovits_disc.bin.list_discriminators``
"""

import argparse
from typing import List, Optional

from espnet_sovits_disc.registry import DISCRIMINATORS, get_discriminator_class


def describe(name: str) -> str:
    """Build discriminator ``name`` with its defaults and describe it.

    Args:
        name (str): A registry name such as ``sovits_mpd``.

    Returns:
        str: One line with the class, sub-discriminators and parameter count.

    """
    discriminator = get_discriminator_class(name)()
    n_params = sum(p.numel() for p in discriminator.parameters())
    subs = ", ".join(discriminator.sub_discriminator_names)
    return (
        f"{name:<11} {type(discriminator).__name__:<35} "
        f"{n_params:>12,} parameters  [{subs}]"
    )


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    for name in DISCRIMINATORS:
        print(describe(name))


if __name__ == "__main__":
    main()
