"""PyTorch side of bench/models.mjs: real models (a CIFAR ResNet, a small Transformer encoder)
exported to ONNX for hesse, and the same workloads timed in PyTorch, one thread, float32.

    python3 torch_models.py export OUT [MODEL ...]          write OUT/<model>/ (see below)
    python3 torch_models.py time OUT MODEL=STEPS [...]      time grad, HVP, GGN·v and Lanczos of
                                                            STEPS products; one JSON line on stdout

Models (MODELS below): resnet20 (BatchNorm folded into the convs before export: the module timed
is the folded one, so both sides compute the same function of the same parameters), resnet20_bn
(BatchNorm kept: eval module exported with TrainingMode.PRESERVE, running statistics are
buffers, BN weight/bias parameters), transformer (token ids, 2 post-norm encoder layers).

OUT/<model>/ holds: model.onnx (torch.onnx.export, opset 17, fixed shapes), x.npy, y.npy (int64
class indices), state.pt (the module, for `time`), map.npy (int32, one entry per element of the
ONNX float initializers in file order: the flat torch parameter index it holds, or -1 for a
buffer), v.npy (float32 direction, torch named_parameters order, flat), grad64.npy, hvp64.npy,
ggnvp64.npy (float64 references of the same function in torch order), meta.json (initializer
names, sizes and roles, P, loss, shapes, the exported op types, forward FLOPs).

The map is found as test/fixtures/gen_models.py finds it: the module is exported again with
parameter element k set to k + 1 (exact in float32), so folded transposes and slices of weights
show up as integer-valued initializers. Initializers that are neither (a value computed from
several parameters) are refused: the comparison would be meaningless.

Timed idioms (PyTorch's fastest for each, on module parameters):
  grad   torch.autograd.grad(loss, params)
  hvp    double backward: grad with create_graph, then grad of <g, v> (forward recomputed)
  ggnvp  functorch: jvp of the network output (J·v), the loss Hessian in closed form on the
         logits (softmax CE: (diag(p) − p pᵀ)/N per sample), then vjp (Jᵀ·); also the
         double-backward trick (J·v = d/du <Jᵀu, v>); the faster is reported, both are listed
  (convolutions: PyTorch's default oneDNN kernels; grad and HVP also with them off, listed)
  lanczos STEPS Lanczos steps with full reorthogonalization (the same number of products hesse
         used), each HVP one backward through the retained gradient graph (PyHessian's way,
         the fastest per product), then the top-5 Ritz values from eigvalsh of the tridiagonal.
"""
import copy
import io
import json
import math
import os
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))
OPSET = 17
K = 5


# ================================================================ models ==

class BasicBlock(nn.Module):
    """He et al. 2016's CIFAR block: conv3×3-BN-ReLU-conv3×3-BN, plus the shortcut, ReLU. The
    shortcut is a 1×1 conv + BN where the shape changes ("option B")."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.short is None else self.short(x)))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 3×32×32 inputs: conv3×3(3→16)+BN+ReLU, 3 stages of n blocks (16, 32, 64
    channels, stride 2 at the start of stages 2 and 3), global average pool, FC 64→10."""

    def __init__(self, n=3, classes=10):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for width, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(n):
                blocks.append(BasicBlock(cin, width, stride if i == 0 else 1))
                cin = width
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.blocks(F.relu(self.bn(self.conv(x))))), 1))


class TokenTransformer(nn.Module):
    """Token embedding + learned positions, L post-norm TransformerEncoderLayers (ReLU, dropout
    0.1: off in eval), mean over positions, classifier."""

    def __init__(self, vocab, T, d, heads, ff, layers, classes):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(1, T, d) * 0.1)
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d, heads, ff, dropout=0.1, batch_first=True), layers, enable_nested_tensor=False)
        self.head = nn.Linear(d, classes)

    def forward(self, ids):
        return self.head(self.encoder(self.embed(ids) + self.pos).mean(dim=1))


def fold_bn(model):
    """The eval model with each BatchNorm folded into the conv just before it
    (torch.nn.utils.fusion.fuse_conv_bn_eval), as the exporter's EVAL mode would fold it."""
    m = copy.deepcopy(model).eval()
    for mod in m.modules():
        for a, b in (("conv", "bn"), ("conv1", "bn1"), ("conv2", "bn2")):
            if isinstance(getattr(mod, a, None), nn.Conv2d) and isinstance(getattr(mod, b, None), nn.BatchNorm2d):
                setattr(mod, a, torch.nn.utils.fusion.fuse_conv_bn_eval(getattr(mod, a), getattr(mod, b)))
                setattr(mod, b, nn.Identity())
        if isinstance(mod, nn.Sequential) and len(mod) == 2 and isinstance(mod[0], nn.Conv2d) and isinstance(mod[1], nn.BatchNorm2d):
            mod[0] = torch.nn.utils.fusion.fuse_conv_bn_eval(mod[0], mod[1])
            mod[1] = nn.Identity()
    return m


def calibrate_bn(model, x):
    """Running statistics that match the data (as after training): cumulative averages over a
    few train-mode passes, so eval-mode activations are neither exploding nor vanishing."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None
            m.reset_running_stats()
            with torch.no_grad():  # and non-trivial affine parameters
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    model.train()
    with torch.no_grad():
        for k in range(4):
            model(x + 0.1 * torch.randn_like(x))
    model.eval()


def resnet(n, fold):
    def make():
        torch.manual_seed(0)
        m = CifarResNet(n)
        N = 32
        x = torch.randn(N, 3, 32, 32)
        y = torch.randint(0, 10, (N,))
        calibrate_bn(m, x)
        return (fold_bn(m) if fold else m), x, y
    return make


class FloatTransformer(TokenTransformer):
    """The same encoder on float features [N, T, fin]: a Linear projection in place of the embedding."""

    def __init__(self, fin, T, d, heads, ff, layers, classes):
        super().__init__(1, T, d, heads, ff, layers, classes)
        self.embed = nn.Linear(fin, d)


def transformer(tokens=True):
    torch.manual_seed(0)
    N, T, vocab = 32, 32, 100
    if tokens:
        m = TokenTransformer(vocab, T, d=64, heads=4, ff=256, layers=2, classes=10).eval()
    else:
        m = FloatTransformer(16, T, d=64, heads=4, ff=256, layers=2, classes=10).eval()
    # nn.TransformerEncoder deep-copies one layer, and LayerNorm starts at ones/zeros: the exporter
    # would merge equal initializers into one (a shared parameter). Trained weights differ; so here.
    with torch.no_grad():
        for name, p in m.encoder.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.uniform_(0.8, 1.2)
            elif name.endswith("bias"):
                p.normal_(0, 0.02)
            else:
                p.normal_(0, 1 / math.sqrt(p.shape[1]))
    x = torch.randint(0, vocab, (N, T)) if tokens else torch.randn(N, T, 16)
    y = torch.randint(0, 10, (N,))
    return m, x, y


def control():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Tanh(), nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.Tanh(),
                      nn.Flatten(), nn.Linear(8 * 16 * 16, 64), nn.GELU(), nn.Linear(64, 10)).eval()
    return m, torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))


MODELS = {
    "control": dict(make=control, mode="EVAL",
                    desc="not a target: a small CNN of ops hesse imported before issue 9 (Conv, Tanh, Flatten, Gemm, GELU), N = 32, 3×32×32, so the harness runs end to end today"),
    "resnet20": dict(make=resnet(3, True), mode="EVAL",
                     desc="CIFAR ResNet-20 (He et al. 2016, widths 16/32/64, 1×1-conv shortcuts), BatchNorm folded into the convs (in PyTorch, before export), N = 32, 3×32×32, 10 classes, CE"),
    "resnet20_bn": dict(make=resnet(3, False), mode="PRESERVE",
                        desc="the same ResNet-20 with BatchNorm kept (eval semantics: running statistics are buffers, BN weight/bias parameters; exported with TrainingMode.PRESERVE)"),
    "transformer": dict(make=transformer, mode="EVAL",
                        desc="token ids [32, 32] (vocab 100), embedding + learned positions, 2 post-norm TransformerEncoderLayers (d = 64, 4 heads, ff 256, ReLU), mean over positions, FC 10, CE"),
    "transformer_float": dict(make=lambda: transformer(False), mode="EVAL",
                              desc="the same encoder on float features [32, 32, 16]: Linear(16, 64) in place of the embedding (no integer input)"),
}


# ================================================================ export ==

def export(model, x, f, mode):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), f, opset_version=OPSET, do_constant_folding=True, input_names=["x"],
                          output_names=["logits"], export_params=True, training=getattr(torch.onnx.TrainingMode, mode))


def parse_onnx(b):
    sys.dont_write_bytecode = True  # no __pycache__ in test/fixtures
    sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "fixtures"))
    import gen_onnx
    return gen_onnx.parse_model(b)


def initializer_map(model, x, mode, real):
    """Per float initializer of the real export: (name, size, role, torch indices or None)."""
    probe = copy.deepcopy(model)
    with torch.no_grad():
        off = 0
        for p in probe.parameters():
            p.copy_(torch.arange(off + 1, off + 1 + p.numel(), dtype=torch.float32).reshape(p.shape))
            off += p.numel()
    assert off < 2 ** 24, "parameter indices must be exact in float32"
    b = io.BytesIO()
    export(probe, x, b, mode)
    pm = parse_onnx(b.getvalue())
    buffers = {n: t.detach().numpy() for n, t in model.named_buffers()}
    realv = {t["name"]: t["array"] for t in real["graph"]["initializers"]}
    names = [t["name"] for t in pm["graph"]["initializers"]]
    if names != list(realv):
        raise SystemExit("the probe export has other initializers than the real one: %s vs %s" % (names, list(realv)))
    out = []
    for t in pm["graph"]["initializers"]:
        a = t["array"]
        if a.dtype.kind != "f":
            continue
        if t["name"] in buffers or any(bv.shape == a.shape and np.array_equal(bv, realv[t["name"]]) for bv in buffers.values()):
            out.append((t["name"], a.size, "buffer", None))
        elif np.all(a == np.round(a)) and a.min() >= 1 and a.max() <= off:
            out.append((t["name"], a.size, "param", (a.reshape(-1).astype(np.int64) - 1)))
        else:
            raise SystemExit("initializer %s is computed from several parameters: no element map" % t["name"])
    return out


def forward_flops(model, x):
    """2 × the multiply-adds of every Conv2d, Linear and batched matmul in one forward (hooks)."""
    total = [0]

    def conv(m, i, o):
        total[0] += 2 * o.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def lin(m, i, o):
        total[0] += 2 * o.numel() * m.in_features

    hs = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hs.append(m.register_forward_hook(conv))
        elif isinstance(m, nn.Linear):
            hs.append(m.register_forward_hook(lin))
        elif isinstance(m, nn.MultiheadAttention):
            # in_proj 3·d² and out_proj d² per token (F.linear on the weights, no nn.Linear
            # forward), Q·Kᵀ and A·V T·d each; input [N, T, d] (batch_first)
            def mha(m, i, o):
                n, t, dm = i[0].shape
                total[0] += 2 * n * t * (4 * dm * dm + 2 * t * dm)
            hs.append(m.register_forward_hook(mha))
    # with grad enabled: under no_grad an eval TransformerEncoderLayer takes its fused fast path,
    # which calls no submodule
    model(x)
    for h in hs:
        h.remove()
    return total[0]


def references(model, x, y, v):
    """Loss, gradient, HVP and GGN·v of the float64 copy of the model (torch order, flat)."""
    m = copy.deepcopy(model).double()
    params = list(m.parameters())
    vs = unflat(v.double(), params)
    out = m(x if x.dtype == torch.int64 else x.double())
    loss = F.cross_entropy(out, y)
    g = torch.autograd.grad(loss, params, create_graph=True)
    hv = torch.autograd.grad(g, params, grad_outputs=vs)
    ggn = ggnvp_double_backward(m, x if x.dtype == torch.int64 else x.double(), y, params, vs)
    return float(loss), flat(g), flat(hv), flat(ggn)


def cmd_export(out, names):
    for name in names or list(MODELS):
        spec = MODELS[name]
        model, x, y = spec["make"]()
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        export(model, x, os.path.join(d, "model.onnx"), spec["mode"])
        with open(os.path.join(d, "model.onnx"), "rb") as f:
            real = parse_onnx(f.read())
        inits = initializer_map(model, x, spec["mode"], real)
        P = sum(p.numel() for p in model.parameters())
        idx = np.full(sum(s for _, s, _, _ in inits), -1, dtype=np.int32)
        off = 0
        for _, s, role, ix in inits:
            if role == "param":
                idx[off: off + s] = ix
            off += s
        counts = np.bincount(idx[idx >= 0], minlength=P)
        torch.manual_seed(1)
        v = torch.randn(P)
        loss, g, hv, ggn = references(model, x, y, v)
        np.save(os.path.join(d, "x.npy"), x.numpy())
        np.save(os.path.join(d, "y.npy"), y.numpy())
        np.save(os.path.join(d, "map.npy"), idx)
        np.save(os.path.join(d, "v.npy"), v.numpy())
        for k, a in (("grad64", g), ("hvp64", hv), ("ggnvp64", ggn)):
            np.save(os.path.join(d, k + ".npy"), a.numpy())
        torch.save(model, os.path.join(d, "state.pt"))
        # How far the f64 gradient itself moves when x moves by 1e-7 (relative, 3 draws): with
        # millions of ReLUs a few pre-activations lie that close to the kink, and float32 rounding
        # flips them, in any f32 implementation. It bounds how closely f32 can match f64 here.
        sens = None
        if x.dtype != torch.int64:
            m64 = copy.deepcopy(model).double()
            p64 = list(m64.parameters())
            gen = torch.Generator().manual_seed(7)
            sens = max(float((flat(torch.autograd.grad(F.cross_entropy(
                m64(x.double() * (1 + 1e-7 * torch.randn(x.shape, generator=gen, dtype=torch.float64))), y), p64)) - g).norm() / g.norm())
                for _ in range(3))
        meta = {
            "sensitivity": sens,
            "name": name, "desc": spec["desc"], "exportMode": spec["mode"], "opset": OPSET, "torch": torch.__version__,
            "P": P, "loss64": loss, "x": {"shape": list(x.shape), "dtype": str(x.dtype)}, "loss": "ce",
            "initializers": [{"name": n, "size": s, "role": r} for n, s, r, _ in inits],
            "bijective": bool(np.all(counts == 1)), "unmapped": int(np.sum(counts == 0)), "shared": int(np.sum(counts > 1)),
            "ops": sorted({n["op_type"] for n in real["graph"]["nodes"]}),
            "forwardFlops": forward_flops(model, x),
        }
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)
        print("%s: P = %d, %d initializers (%d buffers), ops %s" % (
            name, P, len(inits), sum(r == "buffer" for _, _, r, _ in inits), ", ".join(meta["ops"])), file=sys.stderr)


# ================================================================ timing ==

def flat(ts):
    return torch.cat([t.detach().reshape(-1) for t in ts])


def unflat(v, params):
    out, off = [], 0
    for p in params:
        out.append(v[off: off + p.numel()].view_as(p).to(p.dtype))
        off += p.numel()
    return out


def ce_hessian_product(out, y, u):
    """The Hessian of mean softmax cross-entropy w.r.t. the logits [N, C], applied to u."""
    p = torch.softmax(out.detach(), dim=1)
    pu = p * u
    return (pu - p * pu.sum(dim=1, keepdim=True)) / out.shape[0]


def ggnvp_double_backward(model, x, y, params, vs):
    out = model(x)
    u = torch.zeros_like(out, requires_grad=True)
    jtu = torch.autograd.grad(out, params, grad_outputs=u, create_graph=True)
    jv = torch.autograd.grad(jtu, u, grad_outputs=vs)[0]
    return torch.autograd.grad(out, params, grad_outputs=ce_hessian_product(out, y, jv))


def timeit(fn, samples=5, min_s=0.2):
    """Fastest ms a call over `samples` batches after a warm-up call, each batch ≥ min_s of calls
    (on a shared machine noise only slows calls down; bench/models.mjs takes hesse's best too)."""
    fn()
    ts = []
    for _ in range(samples):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            t = time.perf_counter() - t0
            if t >= min_s:
                break
        ts.append(1e3 * t / n)
    return min(ts)


def lanczos(hvp, n, steps, k, dtype, seed=0):
    """`steps` Lanczos steps with full reorthogonalization (twice, classical Gram–Schmidt), the k
    largest Ritz values. One hvp per step."""
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(n, generator=gen, dtype=dtype)
    q /= q.norm()
    Q = torch.empty(steps, n, dtype=dtype)
    alpha, beta = [], []
    for j in range(steps):
        Q[j] = q
        w = hvp(q)
        alpha.append(float(w @ q))
        for _ in range(2):
            w -= Q[: j + 1].T @ (Q[: j + 1] @ w)
        b = float(w.norm())
        if j + 1 < steps:
            beta.append(b)
            if b == 0:
                break
            q = w / b
    m = len(alpha)
    T = torch.diag(torch.tensor(alpha, dtype=torch.float64))
    if m > 1:
        off = torch.tensor(beta[: m - 1], dtype=torch.float64)
        T += torch.diag(off, 1) + torch.diag(off, -1)
    return sorted(torch.linalg.eigvalsh(T).tolist(), reverse=True)[:k], m


def cmd_time(out, jobs):
    import functorch

    res = {"torch": torch.__version__, "threads": torch.get_num_threads(), "models": {}}
    for job in jobs:
        name, steps = job.split("=")
        steps = int(steps)
        d = os.path.join(out, name)
        model = torch.load(os.path.join(d, "state.pt"))
        model.eval()
        if any(isinstance(m, nn.TransformerEncoderLayer) for m in model.modules()):
            # An eval TransformerEncoderLayer takes a fused fast path (no forward AD) whenever no
            # parameter requires grad, as inside functorch. Train mode with every dropout at 0 is
            # the same function on the ordinary path (the model has no BatchNorm).
            model.train()
            for m in model.modules():
                if isinstance(m, nn.Dropout):
                    m.p = 0.0
                if isinstance(m, nn.MultiheadAttention):
                    m.dropout = 0.0
        x = torch.from_numpy(np.load(os.path.join(d, "x.npy")))
        y = torch.from_numpy(np.load(os.path.join(d, "y.npy")))
        v = torch.from_numpy(np.load(os.path.join(d, "v.npy")))
        params = list(model.parameters())
        vs = unflat(v, params)
        P = v.numel()
        r = res["models"][name] = {"P": P}

        def grad():
            return torch.autograd.grad(F.cross_entropy(model(x), y), params)

        def hvp():
            g = torch.autograd.grad(F.cross_entropy(model(x), y), params, create_graph=True)
            return torch.autograd.grad(g, params, grad_outputs=vs)

        fmodel, _, buffers = functorch.make_functional_with_buffers(model)

        def ggn_functorch():
            f = lambda *ps: fmodel(ps, buffers, x)  # noqa: E731
            out, jv = functorch.jvp(f, tuple(p.detach() for p in params), tuple(vs))
            _, pull = functorch.vjp(f, *(p.detach() for p in params))
            return pull(ce_hessian_product(out, y, jv))

        def ggn_double():
            return ggnvp_double_backward(model, x, y, params, vs)

        r["grad"] = timeit(grad)
        r["hvp"] = timeit(hvp)
        ggn = {}
        try:
            ggn["functorch jvp + vjp"] = timeit(ggn_functorch)
        except Exception as e:  # noqa: BLE001  (an op functorch cannot push a tangent through)
            r["ggnFunctorchError"] = "%s: %s" % (type(e).__name__, str(e).splitlines()[0][:200])
        ggn["double-backward trick"] = timeit(ggn_double)
        best = min(ggn, key=ggn.get)
        r["ggnvp"], r["ggnvpIdiom"], r["ggnvpAll"] = ggn[best], best, ggn

        # The f32 results PyTorch times, against the float64 references (the same check hesse gets).
        refs = {k: torch.from_numpy(np.load(os.path.join(d, k + "64.npy"))) for k in ("grad", "hvp", "ggnvp")}
        got = {"grad": flat(grad()), "hvp": flat(hvp()), "ggnvp": flat(ggn_double())}
        if "ggnFunctorchError" not in r:
            got["ggnvpFunctorch"] = flat(ggn_functorch())
        r["relErr"] = {k: float((got[k].double() - refs[k.replace("Functorch", "")]).norm() / refs[k.replace("Functorch", "")].norm()) for k in got}

        # PyTorch's default CPU convolution (oneDNN) is fast but loses accuracy here (~1e-3
        # relative on the ResNet's gradient); the native kernels, for the record.
        if any(isinstance(m, nn.Conv2d) for m in model.modules()):
            with torch.backends.mkldnn.flags(enabled=False):
                r["noMkldnn"] = {"grad": timeit(grad), "hvp": timeit(hvp), "relErr": {
                    k: float((flat(fn()).double() - refs[k]).norm() / refs[k].norm())
                    for k, fn in (("grad", grad), ("hvp", hvp), ("ggnvp", ggn_double))}}

        # Lanczos, `steps` HVPs: on the retained gradient graph (PyHessian's way: one backward
        # a product) and recomputing forward + double backward each product; the faster counts.
        def lanczos_run(retained):
            if retained:
                g = torch.autograd.grad(F.cross_entropy(model(x), y), params, create_graph=True)

                def op(q):
                    return flat(torch.autograd.grad(g, params, grad_outputs=unflat(q, params), retain_graph=True))
            else:
                def op(q):
                    g = torch.autograd.grad(F.cross_entropy(model(x), y), params, create_graph=True)
                    return flat(torch.autograd.grad(g, params, grad_outputs=unflat(q, params)))

            return lanczos(op, P, steps, K, torch.float32)

        lz = {}
        for way, retained in (("retained gradient graph", True), ("recomputed HVP", False)):
            t0 = time.perf_counter()
            vals, m = lanczos_run(retained)
            lz[way] = {"ms": 1e3 * (time.perf_counter() - t0), "steps": m, "values": vals}
        best = min(lz, key=lambda w: lz[w]["ms"])
        r["lanczos"], r["lanczosIdiom"], r["lanczosAll"] = lz[best]["ms"], best, lz
        r["lanczosSteps"], r["lanczosValues"] = lz[best]["steps"], lz[best]["values"]
        print("%s: done" % name, file=sys.stderr)
    print(json.dumps(res))


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("export", "time"):
        raise SystemExit(__doc__)
    (cmd_export if sys.argv[1] == "export" else cmd_time)(sys.argv[2], sys.argv[3:])
