//! Programs as bytes: a program built by `sequential` plus ONNX-like ops (conv, max pooling,
//! slice, pad, where, gather at an index input, concat, a constant) runs bitwise identically
//! after to_bytes → from_bytes and after being spliced into another program; truncated or
//! corrupted bytes are INVALID_ARGUMENT errors, never a panic.

use hesse_core::autodiff::builder::Layer;
use hesse_core::autodiff::op::{Indices, Pool2d};
use hesse_core::autodiff::{Act, Curvature, LossKind, Mode, Program, Run};
use hesse_core::{ErrorCode, Isa};

/// x [2, 1, 6, 6] → conv/relu/maxpool/flatten/linear → [2, 4]; plus slice, pad, where, concat,
/// a constant and a gather at index input 0, all into a cross-entropy with labels (input 1).
fn build() -> (Program, usize, usize) {
    let mut p = Program::new();
    let ix = p.index_input(&[2]).unwrap();
    p.set_index_input(ix, vec![3, 0]).unwrap();
    let x = p.input(&[2, 1, 6, 6]).unwrap();
    let conv = Layer::Conv2d { inputs: 1, outputs: 2, kernel: (3, 3), stride: (1, 1), padding: (1, 1), dilation: (1, 1), groups: 1, bias: true };
    let h = p.sequential(x, &[conv, Layer::Act(Act::Relu)]).unwrap();
    let h = p.max_pool2d(h, Pool2d { kernel: (2, 2), stride: (2, 2), pads: [0; 4], dilation: (1, 1), ceil_mode: false }).unwrap();
    let h = p.slice(h, &[0], &[2], Some(&[1]), None).unwrap(); // [2, 2, 3, 3]
    let h = p.pad(h, &[0, 0, 0, 0, 0, 0, 1, 1], 0.5).unwrap(); // [2, 2, 4, 4]
    let f = p.sequential(h, &[Layer::Flatten, Layer::Linear { inputs: 32, outputs: 4, bias: true }, Layer::Act(Act::Tanh)]).unwrap();
    let c = p.constant(&[2, 4], vec![0.1, -0.2, 0.3, 0.0, 1.0, 2.0, -1.0, 0.5]).unwrap();
    let w = p.where_const(&[2, 4], &[true, false, true, true, false, true, false, true], f, c).unwrap();
    let g = p.gather(w, 1, Indices::Input(ix)).unwrap(); // [2, 2]
    let z = p.concat(&[w, g], 1).unwrap(); // [2, 6]
    let labels = p.input(&[2]).unwrap();
    let (rows, t) = p.loss_rows(LossKind::CrossEntropy, z, labels).unwrap();
    let out = p.cross_entropy(rows, t).unwrap();
    (p, out, f)
}

fn data() -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let x: Vec<f64> = (0..72).map(|i| ((i * 37 % 19) as f64 - 9.0) / 7.0).collect();
    let labels = vec![5.0, 2.0];
    let n_params = build().0.n_params();
    let params: Vec<f64> = (0..n_params).map(|i| ((i * 13 % 11) as f64 - 5.0) / 9.0).collect();
    (x, labels, params)
}

/// Value, gradient and one HVP, as bits.
fn results(p: &Program, out: usize) -> Vec<u64> {
    let (x, labels, params) = data();
    let v: Vec<f64> = (0..params.len()).map(|i| ((i * 7 % 5) as f64 - 2.0) / 3.0).collect();
    let inputs: [&[f64]; 2] = [&x, &labels];
    let r = Run::at(&params, &inputs, Mode::Hvp { tangents: &v, k: 1, cotangent: None, curvature: Curvature::Hessian });
    let o = p.run(Isa::Simd, out, &r).unwrap();
    let g = o.grad.unwrap();
    o.output.p.iter().chain(g.p.iter()).chain(g.t.iter().flatten()).map(|x| x.to_bits()).collect()
}

#[test]
fn a_program_runs_bitwise_identically_after_a_round_trip() {
    let (p, out, _) = build();
    let bytes = p.to_bytes().unwrap();
    let q = Program::from_bytes(&bytes).unwrap();
    assert_eq!((q.nodes().len(), q.n_params(), q.n_inputs(), q.n_index_inputs()), (p.nodes().len(), p.n_params(), p.n_inputs(), p.n_index_inputs()));
    assert_eq!(q.layers(), p.layers());
    let (a, b) = (results(&p, out), results(&q, out));
    assert!(a.len() > 2 * p.n_params());
    assert_eq!(a, b);
    // Writing the copy gives the same bytes.
    assert_eq!(q.to_bytes().unwrap(), bytes);
}

#[test]
fn truncated_or_corrupted_bytes_are_errors() {
    let (p, _, _) = build();
    let bytes = p.to_bytes().unwrap();
    for n in [0, 1, 5, bytes.len() / 2, bytes.len() - 1] {
        let e = Program::from_bytes(&bytes[..n]).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument, "{}", e.message);
        assert!(e.message.contains("program bytes"), "{}", e.message);
    }
    // Every single-byte change either reads back as a program (then it was checked node by node
    // and can run) or is an error; none panics.
    let mut errors = 0;
    for i in 0..bytes.len() {
        for delta in [1u8, 0x80] {
            let mut b = bytes.clone();
            b[i] = b[i].wrapping_add(delta);
            match Program::from_bytes(&b) {
                Ok(_) => {}
                Err(e) => {
                    assert_eq!(e.code, ErrorCode::InvalidArgument, "{}", e.message);
                    errors += 1;
                }
            }
        }
    }
    assert!(errors > bytes.len() / 2, "{errors} of {} corruptions refused", 2 * bytes.len());
}

#[test]
fn a_spliced_model_computes_what_it_computed_alone() {
    // The model alone: x [3, 5] → linear/tanh/linear → [3, 2].
    let layers = [Layer::Linear { inputs: 5, outputs: 4, bias: true }, Layer::Act(Act::Tanh), Layer::Linear { inputs: 4, outputs: 2, bias: false }];
    let mut model = Program::new();
    let mx = model.input(&[3, 5]).unwrap();
    let mf = model.sequential(mx, &layers).unwrap();
    let model = Program::from_bytes(&model.to_bytes().unwrap()).unwrap();
    // The objective built directly, and the same one with the model spliced in.
    let objective = |splice: bool| {
        let mut p = Program::new();
        let x = p.input(&[3, 5]).unwrap();
        let f = if splice { p.splice(&model, mf, Some(x), None).unwrap() } else { p.sequential(x, &layers).unwrap() };
        let y = p.input(&[3, 2]).unwrap();
        let out = p.mse(f, y).unwrap();
        (p, out)
    };
    let (a, oa) = objective(false);
    let (b, ob) = objective(true);
    assert_eq!(a.layers(), b.layers());
    let x: Vec<f64> = (0..15).map(|i| (i as f64 - 7.0) / 5.0).collect();
    let y: Vec<f64> = (0..6).map(|i| (i as f64) / 4.0).collect();
    let params: Vec<f64> = (0..a.n_params()).map(|i| ((i * 5 % 7) as f64 - 3.0) / 4.0).collect();
    let v: Vec<f64> = (0..a.n_params()).map(|i| (i % 3) as f64 - 1.0).collect();
    let inputs: [&[f64]; 2] = [&x, &y];
    let run = |p: &Program, out| {
        let r = Run::at(&params, &inputs, Mode::Hvp { tangents: &v, k: 1, cotangent: None, curvature: Curvature::Hessian });
        let o = p.run(Isa::Simd, out, &r).unwrap();
        let g = o.grad.unwrap();
        o.output.p.iter().chain(g.p.iter()).chain(g.t.iter().flatten()).map(|x| x.to_bits()).collect::<Vec<_>>()
    };
    assert_eq!(run(&a, oa), run(&b, ob));
    // A model input of another shape is an error, and the program is as it was.
    let mut p = Program::new();
    let x = p.input(&[4, 5]).unwrap();
    let e = p.splice(&model, mf, Some(x), None).unwrap_err();
    assert!(e.message.contains("[3, 5]") && e.message.contains("[4, 5]"), "{}", e.message);
    assert_eq!((p.nodes().len(), p.n_params()), (1, 0));
}
