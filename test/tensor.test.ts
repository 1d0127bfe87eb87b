import { beforeAll, describe, expect, it } from 'vitest';
import { HesseError, init, isInitialized, memoryStats, tensor, zeros, full, add, exp, Tensor } from '../ts/index.js';

beforeAll(async () => {
  await init();
});

describe('init', () => {
  it('is idempotent', async () => {
    await Promise.all([init(), init()]);
    expect(isInitialized()).toBe(true);
  });
});

describe('tensor', () => {
  it('keeps shape, dtype and data (f32 default, f64 from Float64Array)', () => {
    using a = tensor([[1, 2, 3], [4, 5, 6]]);
    expect(a.shape).toEqual([2, 3]);
    expect(a.dtype).toBe('float32');
    expect(a.size).toBe(6);
    expect(Array.from(a.toArray())).toEqual([1, 2, 3, 4, 5, 6]);
    expect(a.toList()).toEqual([[1, 2, 3], [4, 5, 6]]);
    using b = tensor(new Float64Array([0.1, 0.2]), [2, 1]);
    expect(b.dtype).toBe('float64');
    expect(b.toArray()).toBeInstanceOf(Float64Array);
    expect(Array.from(b.toArray())).toEqual([0.1, 0.2]); // f64 round-trips exactly
    using s = tensor([3.5], []);
    expect(s.item()).toBe(3.5);
    using z = full([2, 2], 7, 'float64');
    expect(Array.from(z.toArray())).toEqual([7, 7, 7, 7]);
  });

  it('copies: later changes to the source array do not leak in', () => {
    const src = new Float32Array([1, 2]);
    using t = tensor(src);
    src[0] = 99;
    expect(t.toArray()[0]).toBe(1);
  });

  it('reports bad input with codes that name the shapes', () => {
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(HesseError);
        return e as HesseError;
      }
      throw new Error('expected a HesseError');
    };
    const e1 = err(() => tensor([1, 2, 3], [2, 2]));
    expect(e1.code).toBe('LENGTH_MISMATCH');
    expect(e1.message).toContain('[2, 2]');
    expect(err(() => tensor([1], [1], 'int8' as never)).code).toBe('UNKNOWN_DTYPE');
    expect(err(() => tensor([1, 2], [-2] as never)).code).toBe('INVALID_ARGUMENT');
    expect(err(() => tensor([[1, 2], [3]])).code).toBe('INVALID_ARGUMENT'); // ragged nesting
    const oom = err(() => zeros([30000, 30000]));
    expect(oom.code).toBe('OUT_OF_MEMORY');
    expect(oom.message).toContain('[30000, 30000]');
    expect(err(() => zeros([1 << 20, 1 << 20, 1 << 20])).code).toBe('OUT_OF_MEMORY');
    // ...and the instance still works.
    using ok = add(tensor([1, 2]), 1);
    expect(Array.from(ok.toArray())).toEqual([2, 3]);
  });

  it('throws DISPOSED on use after dispose, and dispose is idempotent', () => {
    const t = tensor([1, 2, 3]);
    t.dispose();
    t.dispose();
    expect(t.disposed).toBe(true);
    expect(() => exp(t)).toThrowError(HesseError);
    try {
      t.toArray();
    } catch (e) {
      expect((e as HesseError).code).toBe('DISPOSED');
      expect((e as HesseError).message).toContain('[3]');
    }
  });

  it('`using` disposes at the end of the block', () => {
    let outer: Tensor;
    {
      using t = tensor([1]);
      outer = t;
      expect(outer.disposed).toBe(false);
    }
    expect(outer.disposed).toBe(true);
  });

  it('returns wasm memory to its baseline after 10,000 tensors are created and disposed', () => {
    // Warm up the allocator, then measure.
    for (let i = 0; i < 100; i++) tensor(new Float32Array(256), [16, 16]).dispose();
    const before = memoryStats();
    for (let i = 0; i < 10_000; i++) {
      const a = tensor(new Float32Array(256), [16, 16]);
      const b = exp(a);
      a.dispose();
      b.dispose();
    }
    const after = memoryStats();
    expect(after.liveTensors).toBe(before.liveTensors);
    expect(after.liveBytes).toBe(before.liveBytes);
    expect(after.wasmBytes).toBe(before.wasmBytes);
  });
});
