// Hessian-free optimization vs plain gradient descent on the 8×8 digits (shipped with hesse),
// MLP 64-32-10 (tanh, cross-entropy), full batch, f64. Prints the training loss of each and the
// work each used, in gradient-equivalents: a gradient = 1; a Gauss–Newton product and a loss
// evaluation count as their time relative to a gradient, measured at the start of the run.
//
//   npm run build && node examples/hessian-free-digits.mjs
import * as hs from '../dist/index.js';

await hs.init();
const data = await hs.datasets.digits();
const x = hs.tensor(data.x, [data.n, data.features], 'float64');
const y = hs.tensor(data.y, [data.n], 'float64');
const model = hs.nn.sequential([hs.nn.linear(64, 32), hs.nn.tanh(), hs.nn.linear(32, 10)]);
const init = model.init({ seed: 0, dtype: 'float64' });

// What a product and a loss cost relative to a gradient, measured here.
const probe = hs.objective(model, 'ce', { x, y }, { params: init.slice() });
const time = (f) => { f(); const t0 = performance.now(); for (let i = 0; i < 20; i++) f(); return (performance.now() - t0) / 20; };
const tGrad = time(() => probe.grad());
const tGgn = time(() => probe.ggnvp(init));
const tLoss = time(() => probe.loss());
console.log(`cost on this workload: gradient ${tGrad.toFixed(2)} ms, GGN product ${tGgn.toFixed(2)} ms (${(tGgn / tGrad).toFixed(2)}×), loss ${tLoss.toFixed(2)} ms (${(tLoss / tGrad).toFixed(2)}×)`);
probe.dispose();

// Plain gradient descent: 200 steps, the best of a small learning-rate sweep (fair to GD).
let best = { lr: 0, loss: Infinity, curve: [] };
for (const lr of [0.1, 0.3, 1, 3]) {
  const obj = hs.objective(model, 'ce', { x, y }, { params: init.slice() });
  const curve = [];
  for (let s = 0; s < 200; s++) {
    const [l, g] = obj.valueAndGrad();
    curve.push(l);
    for (let i = 0; i < g.length; i++) obj.params[i] -= lr * g[i];
  }
  const final = obj.loss();
  curve.push(final);
  if (final < best.loss) best = { lr, loss: final, curve };
  obj.dispose();
}
console.log(`gradient descent: 200 steps (200 gradient-equivalents), best lr ${best.lr}: loss ${best.curve[0].toFixed(4)} → ${best.loss.toFixed(4)}`);

// Hessian-free, stopped once it has spent as much as gradient descent did.
const obj = hs.objective(model, 'ce', { x, y }, { params: init.slice() });
const budget = 200;
const [cProduct, cLoss] = [tGgn / tGrad, tLoss / tGrad];
const equivalents = (s) => s.gradients + cProduct * s.products + cLoss * s.lossEvals;
const hf = hs.hessianFree(obj, {
  steps: 100,
  damping: 1,
  cgMaxIter: 10,
  onStep: (s) => equivalents(s) < budget,
});
const last = hf.steps.at(-1);
console.log(`Hessian-free: ${hf.steps.length} steps, ${last.gradients} gradients + ${last.products} GGN products + ${last.lossEvals} losses = ${equivalents(last).toFixed(0)} gradient-equivalents: loss ${hf.losses[0].toFixed(4)} → ${hf.losses.at(-1).toFixed(4)}`);
obj.dispose();
console.log(hf.losses.at(-1) < best.loss ? 'Hessian-free reached the lower training loss.' : 'Gradient descent reached the lower training loss.');
