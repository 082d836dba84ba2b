"""``conv_algorithm: direct`` runs exactly the reference's operations.

A plain GPT-SoVITS-shaped multi-period discriminator, written here from the
architecture tables (``torch.nn.utils.weight_norm`` around ``Conv1d`` and
``Conv2d``, reflect padding, leaky ReLU 0.1, ``flatten(x, 1, -1)``), loaded
with the golden weights, gives bitwise the scores and feature maps of
``sovits_mpd`` with ``conv_algorithm: direct`` on the CPU, for v2 and v2Pro.
"""

import warnings

import pytest
import torch
import torch.nn.functional as F

from espnet_sovits_disc.discriminators import SoVITSMultiPeriodDiscriminator
from espnet_sovits_disc.discriminators.scale import SCALE_LAYERS
from tests.golden import inputs, reference_state_dict


def weight_normed(conv: torch.nn.Module) -> torch.nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.nn.utils.weight_norm(conv)


class PlainScale(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.convs = torch.nn.ModuleList(
            weight_normed(torch.nn.Conv1d(i, o, k, s, groups=g, padding=p))
            for i, o, k, s, g, p in SCALE_LAYERS
        )
        self.conv_post = weight_normed(torch.nn.Conv1d(1024, 1, 3, 1, padding=1))

    def forward(self, x):
        fmaps = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            fmaps.append(x)
        x = self.conv_post(x)
        fmaps.append(x)
        return torch.flatten(x, 1, -1), fmaps


class PlainPeriod(torch.nn.Module):
    def __init__(self, period):
        super().__init__()
        self.period = period
        channels = [1, 32, 128, 512, 1024, 1024]
        self.convs = torch.nn.ModuleList(
            weight_normed(
                torch.nn.Conv2d(
                    channels[i], channels[i + 1], (5, 1), (3 if i < 4 else 1, 1),
                    padding=(2, 0),
                )
            )
            for i in range(5)
        )
        self.conv_post = weight_normed(torch.nn.Conv2d(1024, 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x):
        b, c, t = x.shape
        if t % self.period:
            n_pad = self.period - t % self.period
            x = F.pad(x, (0, n_pad), "reflect")
            t = t + n_pad
        x = x.view(b, c, t // self.period, self.period)
        fmaps = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            fmaps.append(x)
        x = self.conv_post(x)
        fmaps.append(x)
        return torch.flatten(x, 1, -1), fmaps


class PlainMultiPeriod(torch.nn.Module):
    def __init__(self, periods):
        super().__init__()
        self.discriminators = torch.nn.ModuleList(
            [PlainScale()] + [PlainPeriod(p) for p in periods]
        )

    def forward(self, x):
        return [d(x) for d in self.discriminators]


@pytest.mark.parametrize(
    "case, version, periods",
    [
        ("gpt_sovits_mpd_v1", "v2", [2, 3, 5, 7, 11]),
        ("gpt_sovits_mpd_v2pro", "v2Pro", [2, 3, 5, 7, 11, 17, 23]),
    ],
)
def test_direct_is_bitwise_the_plain_reference_shaped_model(case, version, periods):
    weights = reference_state_dict(case)
    plain = PlainMultiPeriod(periods).eval()
    plain.load_state_dict(weights)
    ours = SoVITSMultiPeriodDiscriminator(version=version, conv_algorithm="direct").eval()
    ours.load_state_dict(weights)
    real, fake = inputs()
    compared = 0
    with torch.no_grad():
        for x in (real, fake):
            for (score, fmaps), outputs in zip(plain(x), ours(x)):
                assert torch.equal(outputs[-1], score)
                # The reference's last feature map is conv_post's output
                # before flattening; ours is the flattened score itself.
                assert len(outputs) == len(fmaps)
                for mine, theirs in zip(outputs[:-1], fmaps[:-1]):
                    assert mine.shape == theirs.shape
                    assert torch.equal(mine, theirs)
                    compared += 1
    assert compared == 2 * 6 * (1 + len(periods)) - 2 * len(periods)
