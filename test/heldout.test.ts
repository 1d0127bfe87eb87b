/**
 * Held-out real architectures (test/fixtures/heldout, from gen_heldout.py): a CIFAR ResNet-18, a
 * VGG-style net, MobileNetV2/V3 blocks, a DenseNet block, GPT-style causal transformers (a
 * hand-written nanoGPT attention; nn.MultiheadAttention with a torch.triu mask), a LLaMA-style
 * block (RMSNorm, rotary embeddings, SwiGLU), a ViT, an LSTM classifier on token ids, a Conv1d
 * net, a BatchNorm1d/LayerNorm/PReLU MLP, shape ops (pad, chunk, split, expand, repeat, stack,
 * mean over (2, 3)), torch.triu/tril on activations, einsum attention with F.normalize, GroupNorm
 * and InstanceNorm, each exported by torch 1.13 at opsets 13 and 17 (where torch can), run
 * through the `hessian` CLI as a user runs it, in float32 (≤ 1e-4 relative) and with --f64
 * (≤ 1e-9), against float64 PyTorch references of the exported function.
 *
 * hesse's parameter order is the file's initializer order, not named_parameters', so the
 * references are order-free: the loss, P, the sorted gradient, and the sorted H·θ and G·θ with
 * v = θ itself (read in hesse's order from the file): a permutation of the parameters permutes
 * g, Hθ and Gθ alike. Exports with a dynamic batch axis (and sequence axis, for the token
 * models) are also run in batches of 1. A model with ops out of scope (ConvTranspose, Resize) must exit 2 with one
 * line naming each op, its nodes and the opset.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';
import { hessian } from './cli-run.js';

await h.init();

interface Meta {
  loss: number;
  P: number;
  kind: string;
  loss_cli: 'ce' | 'mse';
  opsets: number[];
  dynamic: boolean;
}

const root = new URL('./fixtures/heldout/', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'hesse-heldout-'));
const OUT_OF_SCOPE = new Set(['decoderish']);
const models = readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory() && !OUT_OF_SCOPE.has(d.name)).map((d) => d.name).sort();

/** A .npy as float64 numbers. */
const readNpy = (p: string) => Float64Array.from(h.npy.parseNpy(readFileSync(p)).data as ArrayLike<number>);
/** max |a − r| / max |r|, a and r sorted ascending first. */
function sortedRel(a: Float64Array, r: Float64Array): number {
  expect(a.length).toBe(r.length);
  const as = Float64Array.from(a).sort();
  let m = 0;
  let s = 0;
  for (let i = 0; i < r.length; i++) {
    m = Math.max(m, Math.abs(as[i]! - r[i]!));
    s = Math.max(s, Math.abs(r[i]!));
  }
  return m / s;
}

describe('held-out real models through the CLI', () => {
  for (const name of models) {
    const dir = join(root, name);
    const meta = JSON.parse(readFileSync(join(dir, 'ref.json'), 'utf8')) as Meta;
    for (const op of meta.opsets) {
      for (const f64 of [false, true]) {
        it(`${name} op${op} ${f64 ? 'f64' : 'f32'}: loss, gradient, H·θ, G·θ`, async () => {
          const file = join(dir, `op${op}.onnx`);
          const model = await h.loadOnnx(readFileSync(file));
          const theta = Float64Array.from(model.init({ dtype: 'float64' }));
          const v = join(tmp, `${name}-${op}-v.npy`);
          writeFileSync(v, h.npy.writeNpy({ dtype: 'float64', shape: [theta.length], data: theta }));
          const base = [file, '--x', join(dir, 'x.npy'), '--y', join(dir, 'y.npy'), '--loss', meta.loss_cli, '--json', ...(f64 ? ['--f64'] : [])];
          const tol = f64 ? 1e-9 : 1e-4;
          const out = (k: string) => join(tmp, `${name}-${op}-${f64}-${k}.npy`);
          const g = await hessian(['grad', ...base, '--out', out('g')]);
          expect(g.stderr).toBe('');
          expect(g.code).toBe(0);
          const gj = JSON.parse(g.stdout) as { loss: number; params: number };
          expect(gj.params).toBe(meta.P);
          expect(Math.abs(gj.loss - meta.loss) / Math.abs(meta.loss)).toBeLessThan(tol);
          expect(sortedRel(readNpy(out('g')), readNpy(join(dir, 'grad_sorted.npy')))).toBeLessThan(tol);
          for (const [matrix, ref] of [['hessian', 'hv_sorted'], ['ggn', 'gv_sorted']] as const) {
            const r = await hessian(['hvp', ...base, '--v', v, '--matrix', matrix, '--out', out(matrix)]);
            expect(r.code, r.stderr).toBe(0);
            expect(sortedRel(readNpy(out(matrix)), readNpy(join(dir, `${ref}.npy`)))).toBeLessThan(tol);
          }
          if (meta.dynamic) {
            // A dynamic batch axis (and sequence axis for token models): batches of 1, the same mean.
            const b = await hessian(['grad', ...base, '--batch-size', '1', '--out', out('g1')]);
            expect(b.code, b.stderr).toBe(0);
            expect(Math.abs((JSON.parse(b.stdout) as { loss: number }).loss - meta.loss) / Math.abs(meta.loss)).toBeLessThan(tol);
            expect(sortedRel(readNpy(out('g1')), readNpy(join(dir, 'grad_sorted.npy')))).toBeLessThan(tol);
          }
        }, 120_000);
      }
    }
  }

  it('ops out of scope (ConvTranspose, Resize): exit 2, one line naming every op, its nodes and the opset', async () => {
    const dir = join(root, 'decoderish');
    for (const op of [13, 17]) {
      const r = await hessian(['loss', join(dir, `op${op}.onnx`), '--x', join(dir, 'x.npy'), '--y', join(dir, 'y.npy'), '--loss', 'ce', '--json']);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      for (const s of ['Resize', "'/up/Resize'", 'ConvTranspose', "'/t/ConvTranspose'", `opset ${op}`]) expect(lines[0]).toContain(s);
    }
  });
});
