"""GAN-TTS training: ESPnet's ``espnet2.bin.gan_tts_train`` with the plugin.

Example::

    python -m espnet_sovits_disc.bin.gan_tts_train --config conf/train.yaml \
        --discriminator_type sovits_mpd ...
"""

from typing import Optional, Sequence

import torch

from espnet_sovits_disc.tasks.gan_tts import GANTTSTask


def get_parser():
    """Return the argument parser of the task."""
    return GANTTSTask.get_parser()


def main(cmd: Optional[Sequence[str]] = None):
    """Run GAN-TTS training (or statistics collection).

    Args:
        cmd (Optional[Sequence[str]]): Arguments; ``None`` reads ``sys.argv``.

    """
    try:
        GANTTSTask.main(cmd=cmd)
    finally:
        # ESPnet leaves the process group of a distributed run alive; its
        # gloo threads can then abort the interpreter at exit ("terminate
        # called without an active exception"), failing a finished run.
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
