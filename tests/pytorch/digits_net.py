"""The PyTorch digits CNN the tests train and hand to edgekit as an entry point (`digits_net:build`).

Conv+BN+ReLU x2, global average pool, Linear: NCHW input `image` [1, 1, 8, 8]. `build()` loads the
weights the test trained from `digits_net.pt` beside this file (copied into a temporary dir).
"""

from pathlib import Path

import torch
from torch import nn


class DigitsNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(32, 10)

    def forward(self, image):
        return self.head(self.features(image))


def build():
    model = DigitsNet()
    model.load_state_dict(torch.load(Path(__file__).with_name("digits_net.pt"), weights_only=True))
    return model


def broken():
    raise RuntimeError("weights missing")


def not_a_module():
    return {"weights": 1}
