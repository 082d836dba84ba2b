"""SoVITS-family GAN discriminators and losses for ESPnet's GAN-TTS trainer."""

__version__ = "0.1.0"


def register() -> None:
    """Register the plugin's discriminators and model in ESPnet (idempotent)."""
    from espnet_sovits_disc.registration import register as _register

    _register()
