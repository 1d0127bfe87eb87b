"""Writes data/digits.json: scikit-learn's 8×8 handwritten digits (1797 images, pixel values
0–16, labels 0–9), from the UCI "Optical Recognition of Handwritten Digits" data set
(Alpaydin & Kaynak, 1998; CC BY 4.0). Pixels and labels are stored as base64 of uint8 arrays
(C order, 1797×64 and 1797) so the file stays small and needs no parser beyond JSON.

Run: python3 -m pip install scikit-learn && python3 data/export_digits.py
"""
import base64
import json
import pathlib

import numpy as np
from sklearn.datasets import load_digits

d = load_digits()
x = d.data.astype(np.uint8)
y = d.target.astype(np.uint8)
assert (x == d.data).all() and x.shape == (1797, 64)
out = {
    "description": "8x8 handwritten digits (UCI optdigits via scikit-learn load_digits), pixels 0-16, labels 0-9; CC BY 4.0",
    "shape": list(x.shape),
    "x_uint8_base64": base64.b64encode(x.tobytes()).decode(),
    "y_uint8_base64": base64.b64encode(y.tobytes()).decode(),
}
pathlib.Path(__file__).with_name("digits.json").write_text(json.dumps(out))
