"""NudeNet 3's pretrained YOLOv8n detector (320x320, 18 classes, one [1, 22, 2100] channels-first
head: box centre and size in pixels, then class scores) on crops of real photos that ship in
scikit-image's and matplotlib's wheels (people, a cat, a rocket, coffee). Its faces
are what it finds in such photos. Primary metric: detection F1 of the INT8 artifact against the
float model's detections (score > 0.25, class-wise NMS; same class and IoU >= 0.5 to match)."""

from __future__ import annotations

import pytest

from tests.zoo import data, wheels
from tests.zoo import evaluate as ev

pytestmark = pytest.mark.zoo


def test_yolov8_detections_match_float(zoo_files, edgekit_cli, tmp_path):
    photos = data.write_photos(tmp_path / "photos", [zoo_files(k) for k in wheels.PHOTOS] + [data.grace_hopper()],
                               150, 320)  # fmt: skip
    out = tmp_path / "out"
    _, fp32, int8 = ev.compress(edgekit_cli, zoo_files("nudenet"), photos, out, "--layout", "nchw")
    feeds = ({"images": ev.image_input(photos / name)} for name in ev.held_out(out))
    found, kept, matched, f1 = ev.detection_f1(ev.session(fp32), ev.session(int8), feeds,
                                               lambda outputs: ev.yolo_boxes(outputs[0][0]))  # fmt: skip
    print(f"zoo yolo: float {found} detections, int8 {kept}, matched {matched}, F1 {f1:.3f}")
    assert found >= 10  # the float model does detect (faces)
    assert f1 >= 0.7  # measured: 21 float detections on 29 held-out crops, int8 22, 17 matched, F1 0.791
