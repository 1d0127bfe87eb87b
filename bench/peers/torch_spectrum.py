"""PyTorch peer for bench/spectrum.mjs: top-k Hessian eigenvalues of W2 by PyHessian-style power
iteration with deflation, one thread, float32, on the parameters and data that spectrum.mjs wrote.

    python3 torch_spectrum.py DIR      (DIR holds meta.json, params.f32, x.f32, y.f32, v.f32, hv.f32)

Prints one JSON object on stdout (last line).

The algorithm is PyHessian's `hessian.eigenvalues(maxIter, tol, top_n)` (Yao et al. 2020,
github.com/amirgholami/PyHessian), re-implemented here on lists of per-parameter tensors with the
same semantics:
  - the gradient is built once with create_graph=True (PyHessian's constructor does
    loss.backward(create_graph=True)); each HVP is torch.autograd.grad(grads, params, grad_outputs=v,
    retain_graph=True), i.e. one backward pass through the graph of the gradient;
  - for each of the top_n: v = randn, normalized (÷ (‖v‖ + 1e-6)); up to maxIter times: v is
    Gram–Schmidt'ed against the eigenvectors found so far and normalized, Hv is computed,
    λ_tmp = <Hv, v>, v = Hv normalized; stop when |λ − λ_tmp| / (|λ| + 1e-6) < tol, returning the
    previous estimate λ (as PyHessian does); the eigenvector kept is the last normalized Hv.
The "recompute" variant is the same algorithm with each HVP recomputing forward, gradient graph and
double backward (as bench/peers/torch_autodiff.py's hvp), for comparison with hesse, whose
operator does one full forward-over-reverse pass per product.
"""
import json
import os
import sys
import time

import numpy as np
import torch

torch.set_num_threads(1)


def mlp(sizes):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i + 2 < len(sizes):
            layers.append(torch.nn.Tanh())
    return torch.nn.Sequential(*layers)


def load(d, name):
    return torch.from_numpy(np.fromfile(os.path.join(d, name), dtype="<f4").copy())


def dot(xs, ys):
    return sum(torch.sum(x * y) for x, y in zip(xs, ys))


def normalized(v):
    s = float(dot(v, v)) ** 0.5
    return [vi / (s + 1e-6) for vi in v]


def orthonormalized(w, basis):
    w = [wi.clone() for wi in w]
    for b in basis:
        c = dot(w, b)
        for wi, bi in zip(w, b):
            wi.add_(bi * -c)
    return normalized(w)


def pyhessian_eigenvalues(model, x, y, top_n, max_iter, tol, seed, recompute=False):
    """PyHessian's eigenvalues(): (values, products, iterations per eigenvalue, whether all met tol)."""
    torch.manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    state = {"products": 0}
    if recompute:

        def hvp(v):
            g = torch.autograd.grad(torch.nn.functional.cross_entropy(model(x), y), params, create_graph=True)
            state["products"] += 1
            return torch.autograd.grad(g, params, grad_outputs=v)

    else:
        grads = torch.autograd.grad(torch.nn.functional.cross_entropy(model(x), y), params, create_graph=True)

        def hvp(v):
            state["products"] += 1
            return torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True)

    values, vectors, iters, converged = [], [], [], True
    while len(values) < top_n:
        value, done = None, False
        v = normalized([torch.randn(p.size()) for p in params])
        it = 0
        for it in range(1, max_iter + 1):
            v = orthonormalized(v, vectors)
            hv = hvp(v)
            tmp = float(dot(hv, v))
            v = normalized(hv)
            if value is None:
                value = tmp
            elif abs(value - tmp) / (abs(value) + 1e-6) < tol:
                done = True
                break
            else:
                value = tmp
        values.append(value)
        vectors.append(v)
        iters.append(it)
        converged &= done
    return values, state["products"], iters, converged


def main(d):
    meta = json.load(open(os.path.join(d, "meta.json")))
    sizes, batch = meta["sizes"], meta["batch"]
    model = mlp(sizes)
    flat = load(d, "params.f32")
    off = 0
    with torch.no_grad():
        for p in model.parameters():  # named_parameters order: layer by layer, weight [out, in] then bias
            p.copy_(flat[off : off + p.numel()].view_as(p))
            off += p.numel()
    assert off == flat.numel(), f"parameter count {off} vs file {flat.numel()}"
    x = load(d, "x.f32").view(batch, sizes[0])
    y = load(d, "y.f32").to(torch.int64)
    params = list(model.parameters())

    # Same function? The loss, and one HVP against hesse's.
    loss = torch.nn.functional.cross_entropy(model(x), y)
    v = load(d, "v.f32")
    vs, off = [], 0
    for p in params:
        vs.append(v[off : off + p.numel()].view_as(p))
        off += p.numel()
    g = torch.autograd.grad(loss, params, create_graph=True)
    hv = torch.cat([t.reshape(-1) for t in torch.autograd.grad(g, params, grad_outputs=vs, retain_graph=True)])
    hv_hesse = load(d, "hv.f32")
    out = {
        "torch": torch.__version__,
        "loss": float(loss),
        "hvpRelDiff": float(torch.linalg.norm(hv - hv_hesse) / torch.linalg.norm(hv)),
    }

    # Time of one HVP by each route (median of 7 batches of 20).
    def per_call(fn, n=20, batches=7):
        fn()
        ts = []
        for _ in range(batches):
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            ts.append((time.perf_counter() - t0) / n)
        return 1e3 * sorted(ts)[batches // 2]

    out["hvpRetainedMs"] = per_call(lambda: torch.autograd.grad(g, params, grad_outputs=vs, retain_graph=True))
    out["hvpRecomputeMs"] = per_call(
        lambda: torch.autograd.grad(
            torch.autograd.grad(torch.nn.functional.cross_entropy(model(x), y), params, create_graph=True), params, grad_outputs=vs
        )
    )

    k, seeds = meta["k"], meta["seeds"]
    runs = {}
    for name, tol, max_iter, recompute, seeds_ in [
        ("pyhessian", meta["pyhessianTol"], meta["pyhessianMaxIter"], False, seeds),
        ("recompute", meta["pyhessianTol"], meta["pyhessianMaxIter"], True, seeds),
        ("tight", meta["tightTol"], meta["tightMaxIter"], False, seeds[:1]),
    ]:
        pyhessian_eigenvalues(model, x, y, k, max_iter, tol, 10_000, recompute)  # warm-up, another start vector
        rs = []
        for s in seeds_:
            t0 = time.perf_counter()
            values, products, iters, conv = pyhessian_eigenvalues(model, x, y, k, max_iter, tol, s, recompute)
            ms = 1e3 * (time.perf_counter() - t0)
            rs.append({"seed": s, "ms": ms, "products": products, "values": values, "iterations": iters, "converged": conv})
        runs[name] = {"tol": tol, "maxIter": max_iter, "runs": rs}
    out["runs"] = runs
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
