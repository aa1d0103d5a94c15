"""A PyTorch CNN trained on sklearn's digits (seconds), as a .pt2 archive and as an entry point."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch models need edgekit[torch] (scripts/setup.sh installs it)")
HERE = Path(__file__).parent


@dataclass
class TorchDigits:
    folder: Path  # digits_net.py + digits_net.pt: the entry point digits_net:build
    pt2: Path  # exported with a dynamic batch
    calibration: Path  # data.npz: image [n, 1, 1, 8, 8] + labels (training split)
    x_test: np.ndarray  # [n, 1, 8, 8]
    y_test: np.ndarray
    float_accuracy: float


@pytest.fixture(scope="session")
def torch_digits(tmp_path_factory) -> TorchDigits:
    """Trained in seconds; the float model is >90% accurate on the held-out 30%."""
    import sys

    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None]  # NCHW [n, 1, 8, 8]
    x_train, x_test, y_train, y_test = train_test_split(x, data.target, test_size=0.3, random_state=0,
                                                        stratify=data.target)
    folder = tmp_path_factory.mktemp("torch_digits")
    shutil.copy(HERE / "digits_net.py", folder)
    sys.path.insert(0, str(folder))
    try:
        import digits_net
    finally:
        sys.path.remove(str(folder))
    torch.manual_seed(0)
    torch.set_num_threads(1)  # tiny batches: more threads only contend on a shared CI machine
    model = digits_net.DigitsNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train.astype(np.int64))
    for _ in range(20):
        for i in torch.randperm(len(xt)).split(64):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[i]), yt[i]).backward()
            optimizer.step()
    model.eval()
    torch.save(model.state_dict(), folder / "digits_net.pt")
    with torch.no_grad():
        accuracy = float((model(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean())
    assert accuracy > 0.9, accuracy
    pt2 = folder / "digits.pt2"
    batch = torch.export.Dim("batch", min=1, max=64)  # a dynamic batch, which edgekit fixes to 1
    torch.export.save(torch.export.export(model, (torch.zeros(2, 1, 8, 8),), dynamic_shapes={"image": {0: batch}}), pt2)
    calibration = tmp_path_factory.mktemp("torch_digits_data")
    np.savez(calibration / "data.npz", image=x_train[:, None], labels=y_train.astype(np.int64))
    sys.modules.pop("digits_net", None)
    return TorchDigits(folder, pt2, calibration, x_test, y_test, accuracy)
