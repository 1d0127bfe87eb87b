"""PyTorch peer for bench/autodiff.mjs: the same workloads, one thread, float32.

Prints one JSON object {"torch": version, "<workload>.<quantity>": milliseconds, ...} on stdout.
Gradient: loss.backward(). HVP: double backward (grad with create_graph, then grad of <g, v>).
Full Hessian: torch.autograd.functional.hessian(vectorize=True) of the loss as a function of the
flat parameter vector (functional_call style, via torch.nn.utils.stateless where available).
"""
import json
import sys
import time

import torch

torch.set_num_threads(1)
torch.manual_seed(0)

WORKLOADS = {
    "W1": ([784, 256, 256, 10], 128, "ce"),
    "W2": ([64, 128, 128, 10], 256, "ce"),
    "W3": ([10, 5, 1], 32, "mse"),
    "W4": ([20, 32, 32, 3], 64, "ce"),
}


def mlp(sizes):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i + 2 < len(sizes):
            layers.append(torch.nn.Tanh())
    return torch.nn.Sequential(*layers)


def timeit(fn, min_s=0.5):
    fn()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        t = time.perf_counter() - t0
        if t >= min_s:
            return 1e3 * t / n


def main(which):
    out = {"torch": torch.__version__}
    for name, (sizes, batch, loss) in WORKLOADS.items():
        if which and name not in which:
            continue
        model = mlp(sizes)
        x = torch.randn(batch, sizes[0])
        if loss == "ce":
            y = torch.randint(0, sizes[-1], (batch,))
            lossf = torch.nn.functional.cross_entropy
        else:
            y = torch.randn(batch, sizes[-1])
            lossf = torch.nn.functional.mse_loss
        params = list(model.parameters())
        v = [torch.randn_like(p) for p in params]

        def grad():
            g = torch.autograd.grad(lossf(model(x), y), params)
            return g

        def hvp():
            g = torch.autograd.grad(lossf(model(x), y), params, create_graph=True)
            dot = sum((gi * vi).sum() for gi, vi in zip(g, v))
            return torch.autograd.grad(dot, params)

        out[f"{name}.grad"] = timeit(grad)
        out[f"{name}.hvp"] = timeit(hvp)
        if name in ("W3", "W4"):
            shapes = [p.shape for p in params]
            sizes_ = [p.numel() for p in params]

            def flat_loss(theta):
                chunks = torch.split(theta, sizes_)
                h = x
                k = 0
                for layer in model:
                    if isinstance(layer, torch.nn.Linear):
                        w = chunks[k].view(shapes[k])
                        b = chunks[k + 1].view(shapes[k + 1])
                        h = torch.nn.functional.linear(h, w, b)
                        k += 2
                    else:
                        h = layer(h)
                return lossf(h, y)

            theta = torch.cat([p.detach().reshape(-1) for p in params])
            out[f"{name}.hessian"] = timeit(lambda: torch.autograd.functional.hessian(flat_loss, theta, vectorize=True), 1.0)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
