/**
 * Undo the exporter's merge of equal-valued initializers. torch.onnx.export (1.12+, eval mode)
 * deduplicates initializers by value: two distinct parameters that happen to hold the same
 * numbers (every freshly initialized LayerNorm's weight of ones and bias of zeros, a zero-init
 * bias of another layer of that size) become one initializer, and each duplicate is written as
 * `Identity(first) -> duplicate's name`. PyTorch's truly tied weights never take this form: the
 * exporter's state dict holds a shared tensor once (its uses read the one initializer directly,
 * or a transposed copy that constant folding made). So an Identity whose input is an initializer
 * and whose output is a new name is a parameter of its own, and is restored as one: P and the
 * parameter blocks are then PyTorch's named_parameters (each with the name the Identity output
 * carries), not the merged count.
 */
import type { GraphProto, NodeProto, TensorProto } from './decode.js';


/** The graph with each `Identity(initializer) -> name` replaced by an initializer `name` holding a copy of the values (placed right after its source, in graph order). */
export function unmergeInitializers(graph: GraphProto): GraphProto {
  const inits = graph.initializer ?? [];
  const byName = new Map(inits.map((t) => [t.name ?? '', t]));
  const root = new Map(inits.map((t) => [t.name ?? '', t.name ?? '']));
  const copies = new Map<string, TensorProto[]>();
  const dropped = new Set<NodeProto>();
  for (const node of graph.node ?? []) {
    if (node.opType !== 'Identity' || node.domain) continue;
    const src = byName.get(node.input?.[0] ?? '');
    const out = node.output?.[0];
    if (!src || !out || byName.has(out) || (node.output ?? []).length !== 1) continue;
    const copy = { ...src, name: out };
    byName.set(out, copy);
    const r = root.get(src.name ?? '') ?? '';
    root.set(out, r);
    copies.set(r, [...(copies.get(r) ?? []), copy]);
    dropped.add(node);
  }
  if (!dropped.size) return graph;
  const initializer = inits.flatMap((t) => [t, ...(copies.get(t.name ?? '') ?? [])]);
  return { ...graph, initializer, node: (graph.node ?? []).filter((n) => !dropped.has(n)) };
}
