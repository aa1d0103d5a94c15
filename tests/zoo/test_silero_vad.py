"""silero-vad 6: a pretrained streaming voice-activity model (16 kHz chunks of 64 + 512 samples, a
recurrent state [2, batch, 128] fed back, a rank-0 int64 `sr` input, the network inside an `If`).
edgekit folds the `If` (sr == 16000 in every sample). Data: synthetic speech-like audio (data.speech_like; no speech recording ships in a wheel used
here). Calibration samples are chunks with the state the float model carried into them. Primary
metric: on 20 s of unseen audio streamed through the INT8 artifact with its own state fed back,
the share of chunks whose speech decision (probability > 0.5) matches the float model's."""

from __future__ import annotations

import numpy as np
import pytest

from tests.zoo import data
from tests.zoo import evaluate as ev

pytestmark = pytest.mark.zoo


def test_streaming_speech_decisions_match_float(zoo_files, edgekit_cli, tmp_path):
    model = zoo_files("vad")
    float_model = ev.session(model)
    probs, feeds = data.stream_vad(float_model, data.speech_like(20.0, seed=0))
    chunks = tmp_path / "chunks"
    chunks.mkdir()
    for i, feed in enumerate(feeds):
        np.savez(chunks / f"chunk{i:04d}.npz", **feed)
    _, _, int8 = ev.compress(edgekit_cli, model, chunks, tmp_path / "out")
    unseen = data.speech_like(20.0, seed=1)
    reference, _ = data.stream_vad(float_model, unseen)
    candidate, _ = data.stream_vad(ev.session(int8), unseen)
    agreement = float(np.mean((reference > 0.5) == (candidate > 0.5)))
    print(f"zoo vad: speech in {np.mean(reference > 0.5):.2f} of {len(reference)} chunks (float); "
          f"decision agreement {agreement:.3f}, mean |dp| {np.abs(reference - candidate).mean():.3f}")  # fmt: skip
    assert 0.3 < np.mean(reference > 0.5) < 0.9  # the float model hears speech and pauses
    # measured: float speech in 0.58 of 625 chunks; agreement 0.946, mean |dp| 0.073 (0.838 and 0.18
    # without the STFT-magnitude rule)
    assert agreement >= 0.9 and np.abs(reference - candidate).mean() <= 0.12
