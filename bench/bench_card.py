"""Time the neuron card's parts on the bundled model: logit effects, and one live pass per record to layer 29 and 5."""

import time

from nait_core import explain as ex
from nait_core.datasets import load_builtin
from nait_core.models import load_model

m = load_model("smollm2-135m", device="cpu", dtype="float32")
recs = load_builtin("gsm8k").records[:3]
t = time.perf_counter()
ex.logit_effects(m, 12, 345)
a = time.perf_counter() - t
t = time.perf_counter()
ex.logit_effects(m, 12, 346)
a2 = time.perf_counter() - t
t = time.perf_counter()
[ex.layer_tokens(m, r, 29) for r in recs]
b = (time.perf_counter() - t) / 3
t = time.perf_counter()
[ex.layer_tokens(m, r, 5) for r in recs]
c = (time.perf_counter() - t) / 3
print(f"logit_effects {a:.2f}s / {a2:.2f}s; live pass per record to layer 29 {b:.2f}s, to layer 5 {c:.2f}s")
