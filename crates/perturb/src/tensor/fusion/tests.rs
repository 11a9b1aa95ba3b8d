//! Block kernels against the operations' own `eval`: bit for bit, since both run the same
//! closure (or the same `vmath` loop) on the same values, only in blocks.

use super::Operand;
use crate::tensor::{ops, Op, Tensor};

/// The block length a fused chain would use; 1000 is not a multiple of it, so the last block
/// is short.
const BLOCK: usize = 256;
const N: usize = 1000;

/// Deterministic values in [-3, 3] with the special values spread through them.
fn values(seed: u64) -> Vec<f64> {
    let mut state = seed;
    let special = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -0.0,
        1e-310,
        700.0,
        -700.0,
    ];
    (0..N)
        .map(|i| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            if i % 97 == 5 {
                special[(i / 97) % special.len()]
            } else {
                -3.0 + 6.0 * (z >> 11) as f64 / (1u64 << 53) as f64
            }
        })
        .collect()
}

/// `op` on the operands in blocks of [`BLOCK`]; a `None` operand is the scalar `scalar`.
fn blocked(op: &impl Op, operands: &[Option<&[f64]>], scalar: f64) -> Vec<f64> {
    let mut out = vec![f64::MAX; N];
    for (b, chunk) in out.chunks_mut(BLOCK).enumerate() {
        let start = b * BLOCK;
        let inputs: Vec<Operand<'_, f64>> = operands
            .iter()
            .map(|o| match o {
                Some(s) => Operand::Slice(&s[start..start + chunk.len()]),
                None => Operand::Scalar(scalar),
            })
            .collect();
        assert!(
            op.eval_block(&inputs, chunk),
            "{} has a block kernel",
            op.name()
        );
    }
    out
}

fn same_bits(op: &str, fused: &[f64], eager: &[f64]) {
    assert_eq!(fused.len(), eager.len());
    for (i, (f, e)) in fused.iter().zip(eager).enumerate() {
        assert_eq!(
            f.to_bits(),
            e.to_bits(),
            "{op} at {i}: block {f} against eval {e}"
        );
    }
}

fn check_unary(op: impl Op) {
    let x = values(1);
    let eager = op.eval(&[&Tensor::vector(&x)]).unwrap();
    same_bits(op.name(), &blocked(&op, &[Some(&x)], 0.0), eager.as_slice());
    // A scalar operand: the eager value of the one-element tensor, everywhere.
    for v in [0.7, f64::NAN, f64::INFINITY] {
        let one = op.eval(&[&Tensor::scalar(v)]).unwrap().as_slice()[0];
        same_bits(op.name(), &blocked(&op, &[None], v), &[one; N]);
    }
}

fn check_binary(op: impl Op) {
    let (a, b) = (values(2), values(3));
    let (ta, tb) = (Tensor::vector(&a), Tensor::vector(&b));
    let eager = op.eval(&[&ta, &tb]).unwrap();
    same_bits(
        op.name(),
        &blocked(&op, &[Some(&a), Some(&b)], 0.0),
        eager.as_slice(),
    );
    // A 0-d operand on either side, as `eval` broadcasts it.
    let s = Tensor::scalar(1.3);
    let left = op.eval(&[&s, &tb]).unwrap();
    same_bits(
        op.name(),
        &blocked(&op, &[None, Some(&b)], 1.3),
        left.as_slice(),
    );
    let right = op.eval(&[&ta, &s]).unwrap();
    same_bits(
        op.name(),
        &blocked(&op, &[Some(&a), None], 1.3),
        right.as_slice(),
    );
}

#[test]
fn unary_block_kernels_equal_eval_bit_for_bit() {
    check_unary(ops::Neg);
    check_unary(ops::Exp);
    check_unary(ops::Ln);
    check_unary(ops::Square);
    check_unary(ops::Sigmoid);
    check_unary(ops::Sqrt);
    check_unary(ops::Abs);
    check_unary(ops::Sin);
    check_unary(ops::Cos);
    check_unary(ops::Tanh);
    check_unary(ops::Relu);
    check_unary(ops::Softplus);
    check_unary(ops::LogSigmoid);
    check_unary(ops::Recip);
    check_unary(ops::Log1p);
    check_unary(ops::Expm1);
    check_unary(ops::Erf);
    check_unary(ops::Gelu);
    check_unary(ops::GeluTanh);
    check_unary(ops::Silu);
    check_unary(ops::Scale(-2.5));
    check_unary(ops::AddScalar(0.25));
}

#[test]
fn binary_block_kernels_equal_eval_bit_for_bit() {
    check_binary(ops::Add);
    check_binary(ops::Sub);
    check_binary(ops::Mul);
    check_binary(ops::Div);
    check_binary(ops::Pow);
    check_binary(ops::ScaledMul(-1.5));
}

/// `mul_add` (`d + c a b`) on three runs, and with each operand in turn a 0-d tensor (`eval`
/// then broadcasts, in two passes).
#[test]
fn the_ternary_block_kernel_equals_eval_bit_for_bit() {
    let op = ops::MulAdd(0.75);
    let runs = [values(8), values(9), values(10)];
    let tensors: Vec<Tensor<f64>> = runs.iter().map(|r| Tensor::vector(r)).collect();
    let eager = op.eval(&[&tensors[0], &tensors[1], &tensors[2]]).unwrap();
    let all: Vec<Option<&[f64]>> = runs.iter().map(|r| Some(r.as_slice())).collect();
    same_bits("mul_add", &blocked(&op, &all, 0.0), eager.as_slice());
    let s = Tensor::scalar(-0.4);
    for k in 0..3 {
        let mut inputs: Vec<&Tensor<f64>> = tensors.iter().collect();
        inputs[k] = &s;
        let eager = op.eval(&inputs).unwrap();
        let mut operands = all.clone();
        operands[k] = None;
        same_bits("mul_add", &blocked(&op, &operands, -0.4), eager.as_slice());
    }
}

#[test]
fn operands_that_do_not_fit_are_refused_and_leave_the_block_untouched() {
    let mut out = [9.0_f64; 4];
    let short = [1.0, 2.0];
    // Wrong arity, wrong length, and an operation with no block kernel.
    assert!(!ops::Exp.eval_block(&[Operand::Scalar(1.0), Operand::Scalar(1.0)], &mut out));
    assert!(!ops::Exp.eval_block(&[Operand::Slice(&short)], &mut out));
    assert!(!ops::Sin.eval_block(&[Operand::Slice(&short)], &mut out));
    assert!(!ops::Add.eval_block(&[Operand::Slice(&short), Operand::Scalar(1.0)], &mut out));
    assert!(!ops::Add.eval_block(&[Operand::Scalar(1.0)], &mut out));
    assert!(
        !ops::MatMul::default().eval_block(&[Operand::Scalar(1.0), Operand::Scalar(1.0)], &mut out)
    );
    assert_eq!(out, [9.0; 4]);
}

mod chain {
    use crate::tensor::fusion::{Chain, BLOCK};
    use crate::tensor::{ops, Array, Tensor};

    /// 2.5 blocks: the last block is short.
    const LEN: usize = BLOCK * 5 / 2;

    fn vector(seed: u64) -> Tensor<f64> {
        Tensor::vector(&super::values(seed).repeat(3)[..LEN])
    }

    /// The Rosenbrock terms `100 (b - a^2)^2 + (1 - a)^2` as a chain, and unfused.
    fn rosenbrock(a: &Tensor<f64>, b: &Tensor<f64>) -> (Chain<f64>, usize, Tensor<f64>) {
        let mut chain = Chain::new(a.shape());
        let (xa, xb) = (
            chain.leaf(a.clone()).unwrap(),
            chain.leaf(b.clone()).unwrap(),
        );
        let one = chain.leaf(Tensor::scalar(1.0)).unwrap();
        let a2 = chain.apply(&ops::Square, &[xa]).unwrap();
        let d = chain.apply(&ops::Sub, &[xb, a2]).unwrap();
        let d2 = chain.apply(&ops::Square, &[d]).unwrap();
        let t1 = chain.apply(&ops::Scale(100.0), &[d2]).unwrap();
        let e = chain.apply(&ops::Sub, &[one, xa]).unwrap();
        let t2 = chain.apply(&ops::Square, &[e]).unwrap();
        let f = chain.apply(&ops::Add, &[t1, t2]).unwrap();
        let eager = b
            .sub(&a.square())
            .square()
            .scale(100.0)
            .add(&Tensor::scalar(1.0).sub(a).square());
        (chain, f, eager)
    }

    #[test]
    fn a_fused_chain_equals_the_unfused_ops_bit_for_bit() {
        let (a, b) = (vector(4), vector(5));
        let (chain, f, eager) = rosenbrock(&a, &b);
        let fused = &chain.eval(&[f]).unwrap()[0];
        assert_eq!(fused.shape(), eager.shape());
        for (i, (x, y)) in fused.as_slice().iter().zip(eager.as_slice()).enumerate() {
            assert_eq!(x.to_bits(), y.to_bits(), "element {i}: {x} against {y}");
        }
        // NaN and infinities in the inputs come through as they do unfused.
        assert!(fused.as_slice().iter().any(|v| v.is_nan()));
    }

    #[test]
    fn a_fused_sum_agrees_with_sum_all_to_rounding() {
        let (a, b) = (
            Tensor::vector(&vec![0.5; LEN]),
            vector(6).map(|v| if v.is_finite() { v } else { 0.0 }),
        );
        let (chain, f, eager) = rosenbrock(&a, &b);
        let (fused, whole) = (chain.sum(f).unwrap(), eager.sum_all().as_slice()[0]);
        // Per-block partial sums round differently from one pass: a relative 1e-14 of the sum
        // of magnitudes (all terms are >= 0 here) is some 40 roundings of 2^-52.
        assert!(
            (fused - whole).abs() <= 1e-14 * whole,
            "{fused} against {whole}"
        );
        assert!(fused != 0.0);
    }

    #[test]
    fn shared_subexpressions_and_several_outputs() {
        let x = vector(7);
        let mut chain = Chain::new(x.shape());
        let n = chain.leaf(x.clone()).unwrap();
        let e = chain.apply(&ops::Exp, &[n]).unwrap();
        // e used three times: e * e + e.
        let ee = chain.apply(&ops::Mul, &[e, e]).unwrap();
        let y = chain.apply(&ops::Add, &[ee, e]).unwrap();
        // `y` asked for twice: written once, copied once.
        let out = chain.eval(&[y, e, n, y]).unwrap();
        let ex = x.exp();
        let want = ex.mul(&ex).add(&ex);
        assert_eq!(out.len(), 4);
        for (got, want) in out.iter().zip([&want, &ex, &x, &want]) {
            let bits =
                |t: &Tensor<f64>| t.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(got), bits(want));
        }
    }

    #[test]
    fn scalars_only_empty_tensors_and_errors() {
        // A chain of 0-d tensors.
        let mut chain = Chain::new(&[]);
        let x = chain.leaf(Tensor::scalar(2.0_f64)).unwrap();
        let y = chain.apply(&ops::Mul, &[x, x]).unwrap();
        assert_eq!(chain.eval(&[y]).unwrap()[0].to_vec(), vec![4.0]);
        assert_eq!(chain.sum(y).unwrap(), 4.0);
        // An empty shape: empty results, a zero sum.
        let mut chain = Chain::<f64>::new(&[0, 3]);
        let x = chain.leaf(Tensor::zeros(&[0, 3])).unwrap();
        let y = chain.apply(&ops::Exp, &[x]).unwrap();
        assert_eq!(chain.eval(&[y]).unwrap()[0].shape(), &[0, 3]);
        assert_eq!(chain.sum(y).unwrap(), 0.0);
        // Errors name the operation and the cause.
        let mut chain = Chain::new(&[2]);
        let x = chain.leaf(Tensor::vector(&[1.0_f64, 2.0])).unwrap();
        let err = chain
            .leaf(Tensor::vector(&[1.0, 2.0, 3.0]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("fusion::Chain::leaf"), "{err}");
        let err = chain
            .apply(&ops::MatMul::default(), &[x, x])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("matmul") && err.contains("element-wise"),
            "{err}"
        );
        let err = chain.apply(&ops::Exp, &[x + 5]).unwrap_err().to_string();
        assert!(err.contains("earlier node"), "{err}");
        let err = chain.apply(&ops::Add, &[x; 5]).unwrap_err().to_string();
        assert!(
            err.contains("add") && err.contains("more operands"),
            "{err}"
        );
        let bad = chain.apply(&ops::Exp, &[x, x]).unwrap();
        let err = chain.eval(&[bad]).unwrap_err().to_string();
        assert!(err.contains("exp") && err.contains("2 operand"), "{err}");
    }
}

/// The block loops compiled for AVX2 and FMA (taken on a CPU that has them) give the same bits
/// as the same arithmetic element by element: no multiply and add fused on their own, `mul_add`
/// rounded once either way, and lengths that leave a remainder after the vectors.
#[test]
fn the_vectorised_block_loops_give_the_scalar_bits() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 * 8.0 - 4.0
    };
    let f = |v: f64| v.mul_add(1.5, -0.25) / 3.0 + v * v * 0.1 - v.abs().sqrt();
    let g = |a: f64, b: f64| a * b + a / (b.abs() + 1.0) - b.mul_add(a, 0.5);
    let h = |a: f64, b: f64, c: f64| a.mul_add(b, c) * c - a * b + c;
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for n in [0, 1, 3, 4, 5, 7, 8, 9, 31, 33, 512] {
        let a: Vec<f64> = (0..n).map(|_| next()).collect();
        let b: Vec<f64> = (0..n).map(|_| next()).collect();
        let c: Vec<f64> = (0..n).map(|_| next()).collect();
        let mut out = vec![0.0; n];
        super::map_slice(&mut out, &a, &f);
        let by_element: Vec<f64> = a.iter().map(|&v| f(v)).collect();
        assert_eq!(bits(&out), bits(&by_element), "map, n = {n}");
        super::zip_slices(&mut out, &a, &b, &g);
        let by_element: Vec<f64> = a.iter().zip(&b).map(|(&x, &y)| g(x, y)).collect();
        assert_eq!(bits(&out), bits(&by_element), "zip, n = {n}");
        super::zip3_slices(&mut out, &a, &b, &c, &h);
        let by_element: Vec<f64> = (0..n).map(|i| h(a[i], b[i], c[i])).collect();
        assert_eq!(bits(&out), bits(&by_element), "zip3, n = {n}");
        let single: Vec<f32> = a.iter().map(|&v| v as f32).collect();
        let mut out32 = vec![0.0f32; n];
        super::map_slice(&mut out32, &single, &|v: f32| v * 3.0 - 1.0);
        let by_element: Vec<u32> = single.iter().map(|&v| (v * 3.0 - 1.0).to_bits()).collect();
        let mapped: Vec<u32> = out32.iter().map(|v| v.to_bits()).collect();
        assert_eq!(mapped, by_element, "f32 map, n = {n}");
    }
}
