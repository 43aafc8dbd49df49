//! Every differentiable op checked against central finite differences (see
//! `common/gradcheck.rs` for the method and its tolerance), plus the cases finite differences
//! cannot judge: ties in max pooling, the dropout mask, and gradient accumulation.

mod common;

use common::gradcheck::{check, check_with, GradCheck, DEFAULT};
use common::{away_from_zero, distinct, uniform, values};
use edgeflow_tensor::{no_grad, Conv2dOptions, Padding, Rng, Shape, Tensor};

fn opts(strides: (usize, usize), padding: Padding) -> Conv2dOptions {
    Conv2dOptions { strides, padding }
}

fn labels(v: &[i64]) -> Tensor {
    Tensor::from_vec(v.to_vec(), [v.len()]).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Binary ops with broadcasting

/// Operand shape pairs: equal, broadcast on either side, both sides stretched, and a scalar.
const BINARY_SHAPES: &[(&[usize], &[usize])] = &[
    (&[2, 3], &[2, 3]),
    (&[2, 3], &[3]),
    (&[3], &[2, 3]),
    (&[2, 1], &[1, 3]),
    (&[1, 3], &[2, 1]),
    (&[2, 3, 4], &[3, 1]),
    (&[2, 3], &[]),
];

#[test]
fn add_sub_mul_broadcast() {
    for (i, &(sa, sb)) in BINARY_SHAPES.iter().enumerate() {
        let a = uniform(sa, -2.0, 2.0, 10 + i as u64);
        let b = uniform(sb, -2.0, 2.0, 20 + i as u64);
        let inputs = [a, b];
        check(&format!("add {sa:?} {sb:?}"), inputs.clone(), |t| {
            t[0].add(&t[1])
        });
        check(&format!("sub {sa:?} {sb:?}"), inputs.clone(), |t| {
            t[0].sub(&t[1])
        });
        check(&format!("mul {sa:?} {sb:?}"), inputs, |t| t[0].mul(&t[1]));
    }
}

#[test]
fn div_broadcast() {
    for (i, &(sa, sb)) in BINARY_SHAPES.iter().enumerate() {
        let a = uniform(sa, -2.0, 2.0, 30 + i as u64);
        // Keep the denominator away from zero, where 1/b is steep.
        let b = away_from_zero(sb, 0.5, 2.0, 40 + i as u64);
        check(&format!("div {sa:?} {sb:?}"), [a, b], |t| t[0].div(&t[1]));
    }
}

#[test]
fn binary_on_non_contiguous_views() {
    let a = uniform(&[3, 2], -2.0, 2.0, 50);
    let b = uniform(&[2, 3], -2.0, 2.0, 51);
    check("mul of a transposed view", [a, b], |t| {
        t[0].transpose(0, 1)?.mul(&t[1])
    });
}

// ---------------------------------------------------------------------------------------------
// Unary ops

#[test]
fn smooth_unary_ops() {
    let x = uniform(&[3, 4], -3.0, 3.0, 60);
    check("sigmoid", [x.clone()], |t| t[0].sigmoid());
    check("tanh", [x.clone()], |t| t[0].tanh());
    check("gelu", [x.clone()], |t| t[0].gelu());
    check("neg", [x.clone()], |t| t[0].neg());
    check("square", [x.clone()], |t| t[0].square());
    check("mul_scalar", [x.clone()], |t| t[0].mul_scalar(-2.5));
    check("add_scalar", [x], |t| t[0].add_scalar(1.5));
    check("exp", [uniform(&[3, 4], -2.0, 2.0, 61)], |t| t[0].exp());
    // log and sqrt only on positive inputs, away from their singularity at 0.
    check("log", [uniform(&[3, 4], 0.5, 3.0, 62)], |t| t[0].log());
    check("sqrt", [uniform(&[3, 4], 0.5, 3.0, 63)], |t| t[0].sqrt());
}

#[test]
fn relu_away_from_the_kink() {
    let x = away_from_zero(&[4, 5], 0.1, 2.0, 64);
    check("relu", [x], |t| t[0].relu());
}

#[test]
fn clamp_away_from_the_bounds() {
    // Below, inside and above [-0.5, 0.7], none within 0.1 of a bound.
    let x = Tensor::from_vec(
        vec![
            -1.3f32, -0.9, -0.3, -0.1, 0.2, 0.45, 0.9, 1.4, -0.65, 0.3, 1.1, -2.0,
        ],
        [3, 4],
    )
    .unwrap();
    check("clamp", [x], |t| t[0].clamp(-0.5, 0.7));
}

// ---------------------------------------------------------------------------------------------
// Reductions

#[test]
fn sum_and_mean_along_every_axis() {
    let x = uniform(&[2, 3, 4], -2.0, 2.0, 70);
    for axis in [0isize, 1, 2, -1] {
        for keepdim in [false, true] {
            let name = format!("axis {axis} keepdim {keepdim}");
            check(&format!("sum_axis {name}"), [x.clone()], |t| {
                t[0].sum_axis(axis, keepdim)
            });
            check(&format!("mean_axis {name}"), [x.clone()], |t| {
                t[0].mean_axis(axis, keepdim)
            });
        }
    }
    check("sum_all", [x.clone()], |t| t[0].sum_all());
    check("mean_all", [x], |t| t[0].mean_all());
}

#[test]
fn max_along_every_axis_with_distinct_values() {
    // Values 0.1 apart: a step of 1e-2 cannot change which element is the maximum.
    let x = distinct(&[2, 3, 4], 0.1, 71);
    for axis in [0isize, 1, 2, -2] {
        for keepdim in [false, true] {
            let name = format!("max_axis axis {axis} keepdim {keepdim}");
            check(&name, [x.clone()], |t| t[0].max_axis(axis, keepdim));
        }
    }
}

#[test]
fn max_axis_tie_sends_the_gradient_to_the_first_maximum() {
    let x = Tensor::from_vec(vec![1.0f32, 3.0, 3.0, 2.0, 5.0, 5.0], [2, 3])
        .unwrap()
        .with_requires_grad(true);
    let g = x
        .max_axis(1, false)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(
        values(g.get(&x).unwrap()),
        vec![0.0, 1.0, 0.0, 0.0, 1.0, 0.0]
    );
}

// ---------------------------------------------------------------------------------------------
// Shape ops

#[test]
fn reshape_transpose_permute() {
    let x = uniform(&[2, 3, 4], -2.0, 2.0, 80);
    check("reshape", [x.clone()], |t| t[0].reshape([6, 4]));
    check("reshape of a view", [x.clone()], |t| {
        t[0].transpose(0, 2)?.reshape([4, 6])
    });
    check("transpose", [x.clone()], |t| t[0].transpose(0, 2));
    check("transpose -1 -2", [x.clone()], |t| t[0].transpose(-1, -2));
    check("permute", [x.clone()], |t| t[0].permute(&[2, 0, 1]));
    check("contiguous", [x.clone()], |t| {
        Ok(t[0].permute(&[1, 2, 0])?.contiguous())
    });
    check("flatten_batch", [x], |t| t[0].flatten_batch());
}

#[test]
fn narrow_along_each_axis() {
    let x = uniform(&[3, 4, 5], -2.0, 2.0, 81);
    check("narrow axis 0", [x.clone()], |t| t[0].narrow(0, 1, 2));
    check("narrow axis 1", [x.clone()], |t| t[0].narrow(1, 1, 2));
    check("narrow axis -1", [x.clone()], |t| t[0].narrow(-1, 2, 3));
    check("narrow twice", [x], |t| {
        t[0].narrow(2, 1, 3)?.narrow(1, 0, 3)
    });
}

#[test]
fn concat_along_each_axis() {
    let a = uniform(&[2, 3], -2.0, 2.0, 82);
    let b = uniform(&[1, 3], -2.0, 2.0, 83);
    let c = uniform(&[3, 3], -2.0, 2.0, 84);
    check("concat axis 0", [a.clone(), b, c], |t| Tensor::concat(t, 0));
    let d = uniform(&[2, 1], -2.0, 2.0, 85);
    check("concat axis -1", [a.clone(), d], |t| Tensor::concat(t, -1));
    let e = uniform(&[2, 2, 3], -2.0, 2.0, 86);
    let f = uniform(&[2, 1, 3], -2.0, 2.0, 87);
    check("concat axis 1 rank 3", [e, f], |t| Tensor::concat(t, 1));
}

#[test]
fn select_rows_and_embedding_with_repeats() {
    let x = uniform(&[4, 3], -2.0, 2.0, 88);
    // Repeated rows must add their gradients.
    check("select_rows", [x.clone()], |t| {
        t[0].select_rows(&[2, 0, 2, 1, 2])
    });
    let ids = Tensor::from_vec(vec![3i64, 0, 3, 1, 1, 2], [2, 3]).unwrap();
    check("embedding", [x], |t| t[0].embedding(&ids));
}

#[test]
fn broadcast_to_sums_back() {
    let x = uniform(&[3], -2.0, 2.0, 89);
    check("broadcast_to [3] -> [2,4,3]", [x], |t| {
        t[0].broadcast_to(&Shape::new([2, 4, 3]))
    });
    let y = uniform(&[2, 1, 3], -2.0, 2.0, 90);
    check("broadcast_to [2,1,3] -> [2,4,3]", [y], |t| {
        t[0].broadcast_to(&Shape::new([2, 4, 3]))
    });
}

// ---------------------------------------------------------------------------------------------
// Matrix products

#[test]
fn matmul_2d_batched_and_folded() {
    let a = uniform(&[3, 4], -1.0, 1.0, 100);
    let b = uniform(&[4, 5], -1.0, 1.0, 101);
    check("matmul 2-D", [a, b.clone()], |t| t[0].matmul(&t[1]));
    let a3 = uniform(&[2, 3, 4], -1.0, 1.0, 102);
    let b3 = uniform(&[2, 4, 5], -1.0, 1.0, 103);
    check("matmul batched", [a3.clone(), b3], |t| t[0].matmul(&t[1]));
    check("matmul [..,m,k]x[k,n]", [a3, b.clone()], |t| {
        t[0].matmul(&t[1])
    });
    let a4 = uniform(&[2, 2, 3, 4], -1.0, 1.0, 104);
    check("matmul rank 4 x rank 2", [a4, b], |t| t[0].matmul(&t[1]));
}

#[test]
fn matmul_on_transposed_views() {
    // Stored transposed: the product reads them through their strides.
    let at = uniform(&[4, 3], -1.0, 1.0, 110);
    let bt = uniform(&[5, 4], -1.0, 1.0, 111);
    let b = uniform(&[4, 5], -1.0, 1.0, 112);
    check("matmul a^T b", [at.clone(), b], |t| {
        t[0].transpose(0, 1)?.matmul(&t[1])
    });
    check("matmul a^T b^T", [at, bt], |t| {
        t[0].transpose(0, 1)?.matmul(&t[1].transpose(0, 1)?)
    });
    let a3t = uniform(&[2, 4, 3], -1.0, 1.0, 113);
    let b3 = uniform(&[2, 4, 5], -1.0, 1.0, 114);
    check("matmul batched a^T", [a3t, b3], |t| {
        t[0].transpose(-1, -2)?.matmul(&t[1])
    });
    // Batch axis moved: the batch stride is not the largest one.
    let p = uniform(&[3, 2, 4], -1.0, 1.0, 115);
    let q = uniform(&[2, 4, 5], -1.0, 1.0, 116);
    check("matmul permuted batch", [p, q], |t| {
        t[0].permute(&[1, 0, 2])?.matmul(&t[1])
    });
}

// ---------------------------------------------------------------------------------------------
// Convolution

/// Checks input, kernel and (when `with_bias`) bias gradients of one convolution.
fn check_conv(name: &str, input: &[usize], kernel: &[usize], o: Conv2dOptions, with_bias: bool) {
    let x = uniform(input, -1.0, 1.0, 120);
    let k = uniform(kernel, -1.0, 1.0, 121);
    if with_bias {
        let b = uniform(&[kernel[3]], -1.0, 1.0, 122);
        check(name, [x, k, b], |t| t[0].conv2d(&t[1], Some(&t[2]), o));
    } else {
        check(name, [x, k], |t| t[0].conv2d(&t[1], None, o));
    }
}

#[test]
fn conv2d_valid_with_and_without_bias() {
    let o = opts((1, 1), Padding::Valid);
    check_conv(
        "conv 3x3 valid + bias",
        &[2, 5, 6, 3],
        &[3, 3, 3, 4],
        o,
        true,
    );
    check_conv("conv 3x3 valid", &[2, 5, 6, 3], &[3, 3, 3, 4], o, false);
}

#[test]
fn conv2d_stride_2_odd_sizes() {
    let o = opts((2, 2), Padding::Valid);
    check_conv(
        "conv 3x3 s2 valid 7x5",
        &[1, 7, 5, 2],
        &[3, 3, 2, 3],
        o,
        true,
    );
    check_conv(
        "conv 3x3 s2 valid 6x8",
        &[1, 6, 8, 2],
        &[3, 3, 2, 2],
        o,
        false,
    );
}

#[test]
fn conv2d_same_padding_stride_1_and_2() {
    check_conv(
        "conv same s1",
        &[1, 5, 4, 2],
        &[3, 3, 2, 3],
        opts((1, 1), Padding::Same),
        true,
    );
    check_conv(
        "conv same s2 5x7",
        &[2, 5, 7, 2],
        &[3, 3, 2, 3],
        opts((2, 2), Padding::Same),
        true,
    );
    check_conv(
        "conv same s2 6x6",
        &[1, 6, 6, 1],
        &[3, 3, 1, 2],
        opts((2, 2), Padding::Same),
        false,
    );
}

#[test]
fn conv2d_kernel_2x3_strides_2_1() {
    let k = [2, 3, 2, 3];
    check_conv(
        "conv 2x3 s(2,1) same",
        &[1, 5, 8, 2],
        &k,
        opts((2, 1), Padding::Same),
        true,
    );
    check_conv(
        "conv 2x3 s(2,1) valid",
        &[1, 5, 8, 2],
        &k,
        opts((2, 1), Padding::Valid),
        true,
    );
}

#[test]
fn conv2d_pointwise() {
    check_conv(
        "conv 1x1",
        &[2, 3, 4, 3],
        &[1, 1, 3, 5],
        opts((1, 1), Padding::Valid),
        true,
    );
    check_conv(
        "conv 1x1 s2",
        &[1, 5, 5, 3],
        &[1, 1, 3, 2],
        opts((2, 2), Padding::Same),
        true,
    );
}

/// Few taps and a filter count of whole SIMD vectors: the direct kernels, on CPUs that have
/// them (`tests/direct_conv.rs` checks each instruction set against the reference).
#[test]
fn conv2d_direct_kernels() {
    check_conv(
        "direct conv 3x3 RGB + bias",
        &[2, 5, 6, 3],
        &[3, 3, 3, 16],
        opts((1, 1), Padding::Valid),
        true,
    );
    check_conv(
        "direct conv 3x3 s2 same",
        &[1, 7, 5, 3],
        &[3, 3, 3, 32],
        opts((2, 2), Padding::Same),
        true,
    );
}

#[test]
fn conv2d_on_a_non_contiguous_input() {
    let x = uniform(&[1, 4, 5, 2], -1.0, 1.0, 123);
    let k = uniform(&[3, 3, 2, 2], -1.0, 1.0, 124);
    let o = opts((1, 1), Padding::Same);
    check("conv of a transposed view", [x, k], |t| {
        t[0].transpose(1, 2)?.conv2d(&t[1], None, o)
    });
}

// ---------------------------------------------------------------------------------------------
// Pooling

#[test]
fn max_pool2d_with_distinct_values() {
    // 0.05 apart: more than twice the step, so no window changes its winner.
    let cases = [
        (
            "2x2 s2 valid 5x5",
            [2, 5, 5, 2],
            (2, 2),
            opts((2, 2), Padding::Valid),
        ),
        (
            "2x2 s2 same 5x5",
            [1, 5, 5, 2],
            (2, 2),
            opts((2, 2), Padding::Same),
        ),
        (
            "3x3 s2 same 6x7",
            [1, 6, 7, 2],
            (3, 3),
            opts((2, 2), Padding::Same),
        ),
        (
            "3x3 s1 valid 5x6 (overlapping)",
            [1, 5, 6, 2],
            (3, 3),
            opts((1, 1), Padding::Valid),
        ),
        (
            "2x3 s(1,2) same",
            [1, 4, 5, 1],
            (2, 3),
            opts((1, 2), Padding::Same),
        ),
    ];
    for (i, (name, shape, pool, o)) in cases.into_iter().enumerate() {
        let x = distinct(&shape, 0.05, 130 + i as u64);
        check(&format!("max_pool2d {name}"), [x], |t| {
            t[0].max_pool2d(pool, o)
        });
    }
}

/// The input-gradient max pooling must give for `grad_out`: each window's gradient on the first
/// real (not padded) element of the window in row-major order, for a constant input.
fn first_in_window_gradient(
    shape: [usize; 4],
    pool: (usize, usize),
    o: Conv2dOptions,
    grad_out: &Tensor,
) -> Vec<f32> {
    let [batch, h, w, c] = shape;
    let out = grad_out.dims().to_vec();
    let (pad_top, pad_left) = match o.padding {
        Padding::Valid => (0, 0),
        Padding::Same => {
            let total =
                |n: usize, k: usize, s: usize| ((n.div_ceil(s) - 1) * s + k).saturating_sub(n);
            (
                total(h, pool.0, o.strides.0) / 2,
                total(w, pool.1, o.strides.1) / 2,
            )
        }
    };
    let g = values(grad_out);
    let mut gi = vec![0.0f32; batch * h * w * c];
    for b in 0..batch {
        for oy in 0..out[1] {
            for ox in 0..out[2] {
                // Top-left tap of the window that lies inside the image.
                let y = (oy * o.strides.0).saturating_sub(pad_top);
                let x = (ox * o.strides.1).saturating_sub(pad_left);
                for ch in 0..c {
                    gi[((b * h + y) * w + x) * c + ch] +=
                        g[((b * out[1] + oy) * out[2] + ox) * c + ch];
                }
            }
        }
    }
    gi
}

#[test]
fn max_pool2d_ties_go_to_the_first_element_and_conserve_mass() {
    let cases = [
        ([2, 4, 4, 2], (2, 2), opts((2, 2), Padding::Valid), 1.0f32),
        ([1, 5, 5, 1], (2, 2), opts((2, 2), Padding::Same), 1.0),
        // Overlapping windows with padding before the image: a constant negative input must
        // not lose to the (zero) padding, and windows share their first element.
        ([1, 4, 4, 2], (3, 3), opts((1, 1), Padding::Same), -1.0),
        ([1, 5, 6, 1], (3, 2), opts((2, 1), Padding::Same), -2.5),
    ];
    for (shape, pool, o, value) in cases {
        let x = Tensor::full(value, shape.to_vec()).with_requires_grad(true);
        let y = x.max_pool2d(pool, o).unwrap();
        assert!(
            values(&y).iter().all(|&v| v == value),
            "{shape:?}: padding won a window"
        );
        let r = uniform(y.dims(), -1.0, 1.0, 140);
        let g = y.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
        let gi = values(g.get(&x).unwrap());

        let expected = first_in_window_gradient(shape, pool, o, &r);
        assert_eq!(gi, expected, "{shape:?} {pool:?} {o:?}");
        let mass_in: f64 = gi.iter().map(|&v| v as f64).sum();
        let mass_out: f64 = values(&r).iter().map(|&v| v as f64).sum();
        assert!(
            (mass_in - mass_out).abs() < 1e-5,
            "{shape:?}: {mass_in} vs {mass_out}"
        );
    }
}

#[test]
fn max_pool2d_partial_tie_picks_the_first_maximum() {
    // One 2x2 window [[0, 5], [3, 5]]: the maximum 5 appears twice, first at (0, 1).
    let x = Tensor::from_vec(vec![0.0f32, 5.0, 3.0, 5.0], [1, 2, 2, 1]).unwrap();
    let x = x.with_requires_grad(true);
    let y = x.max_pool2d((2, 2), opts((2, 2), Padding::Valid)).unwrap();
    let g = y.sum_all().unwrap().backward().unwrap();
    assert_eq!(values(g.get(&x).unwrap()), vec![0.0, 1.0, 0.0, 0.0]);
}

#[test]
fn avg_pool2d_valid_and_same() {
    let cases = [
        (
            "2x2 s2 valid 5x5",
            [2, 5, 5, 2],
            (2, 2),
            opts((2, 2), Padding::Valid),
        ),
        (
            "2x2 s2 same 5x5",
            [1, 5, 5, 2],
            (2, 2),
            opts((2, 2), Padding::Same),
        ),
        (
            "3x3 s2 same 6x7",
            [1, 6, 7, 2],
            (3, 3),
            opts((2, 2), Padding::Same),
        ),
        (
            "3x3 s1 same 4x4",
            [1, 4, 4, 1],
            (3, 3),
            opts((1, 1), Padding::Same),
        ),
    ];
    for (i, (name, shape, pool, o)) in cases.into_iter().enumerate() {
        let x = uniform(&shape, -1.0, 1.0, 150 + i as u64);
        check(&format!("avg_pool2d {name}"), [x], |t| {
            t[0].avg_pool2d(pool, o)
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Softmax, losses, normalization, dropout

#[test]
fn softmax_and_log_softmax_on_last_and_inner_axes() {
    let x2 = uniform(&[3, 5], -3.0, 3.0, 160);
    let x3 = uniform(&[2, 3, 4], -3.0, 3.0, 161);
    check("softmax -1", [x2.clone()], |t| t[0].softmax(-1));
    check("log_softmax -1", [x2.clone()], |t| t[0].log_softmax(-1));
    check("softmax axis 0 of 2-D", [x2.clone()], |t| t[0].softmax(0));
    check("log_softmax axis 0 of 2-D", [x2], |t| t[0].log_softmax(0));
    check("softmax axis 1 of 3-D", [x3.clone()], |t| t[0].softmax(1));
    check("log_softmax axis 1 of 3-D", [x3.clone()], |t| {
        t[0].log_softmax(1)
    });
    check("softmax axis 0 of 3-D", [x3.clone()], |t| t[0].softmax(0));
    check("log_softmax axis -1 of 3-D", [x3], |t| t[0].log_softmax(-1));
}

#[test]
fn sparse_cross_entropy_with_logits() {
    let z = uniform(&[4, 5], -3.0, 3.0, 170);
    let y = labels(&[0, 3, 4, 1]);
    check("ce with logits", [z.clone()], |t| {
        t[0].sparse_cross_entropy_with_logits(&y)
    });
    check("ce with logits, mean", [z], |t| {
        t[0].sparse_cross_entropy_with_logits(&y)?.mean_all()
    });
}

#[test]
fn sparse_cross_entropy_from_probs() {
    // A plain tensor, not a softmax output: the loss is -log(clip(p[label])).
    let p = uniform(&[4, 5], 0.1, 0.9, 171);
    let y = labels(&[2, 0, 4, 4]);
    check("ce from plain probs", [p], |t| {
        t[0].sparse_cross_entropy_from_probs(&y, 1e-7)
    });
    // Through a softmax the loss is computed from the logits; its gradient must still match.
    let z = uniform(&[4, 5], -3.0, 3.0, 172);
    check("ce from softmax probs", [z], |t| {
        t[0].softmax(-1)?.sparse_cross_entropy_from_probs(&y, 1e-7)
    });
}

#[test]
fn layer_norm_grads_for_input_gamma_and_beta() {
    let x = uniform(&[3, 6], -2.0, 2.0, 180);
    let gamma = uniform(&[6], 0.5, 1.5, 181);
    let beta = uniform(&[6], -0.5, 0.5, 182);
    check("layer_norm 2-D", [x, gamma.clone(), beta.clone()], |t| {
        t[0].layer_norm(&t[1], &t[2], 1e-3)
    });
    let x3 = uniform(&[2, 2, 6], -2.0, 2.0, 183);
    check("layer_norm 3-D eps 1e-5", [x3, gamma, beta], |t| {
        t[0].layer_norm(&t[1], &t[2], 1e-5)
    });
}

#[test]
fn dropout_gradient_is_the_mask() {
    let (rate, seed) = (0.3f32, 42u64);
    let x = uniform(&[4, 5], 0.5, 1.5, 190).with_requires_grad(true);
    let y = x.dropout(rate, &mut Rng::seed(seed)).unwrap();
    let g = y.sum_all().unwrap().backward().unwrap();
    let grad = values(g.get(&x).unwrap());

    // The mask, drawn independently from the same seed: one uniform per element.
    let mut rng = Rng::seed(seed);
    let keep = 1.0 / (1.0 - rate);
    let mask: Vec<f32> = (0..20)
        .map(|_| if rng.uniform() < rate { 0.0 } else { keep })
        .collect();
    assert_eq!(grad, mask);
    assert!(
        mask.contains(&0.0) && mask.contains(&keep),
        "the seed gives a trivial mask"
    );
    let expected: Vec<f32> = values(&x).iter().zip(&mask).map(|(x, m)| x * m).collect();
    assert_eq!(values(&y), expected);

    let x = uniform(&[4, 5], -1.0, 1.0, 191);
    check("dropout", [x], |t| t[0].dropout(rate, &mut Rng::seed(seed)));
}

#[test]
fn gradients_accumulate_when_a_tensor_is_used_twice() {
    let x = Tensor::from_vec(vec![-1.5f32, 0.0, 0.5, 2.0, 3.0, -4.0], [2, 3]).unwrap();
    let x = x.with_requires_grad(true);
    let y = x.mul(&x).unwrap().add(&x).unwrap();
    let g = y.sum_all().unwrap().backward().unwrap();
    let want: Vec<f32> = values(&x).iter().map(|v| 2.0 * v + 1.0).collect();
    assert_eq!(values(g.get(&x).unwrap()), want);

    check("x*x + x", [uniform(&[2, 3], -2.0, 2.0, 200)], |t| {
        t[0].mul(&t[0])?.add(&t[0])
    });
    // A diamond: one tensor feeding two branches of different ops that meet again.
    check("diamond", [uniform(&[2, 3], -2.0, 2.0, 201)], |t| {
        let a = t[0].sigmoid()?;
        let b = t[0].sum_axis(1, true)?;
        a.mul(&b)?.add(&t[0].exp()?)
    });
    let w = uniform(&[3, 3], -1.0, 1.0, 202);
    check("x matmul x", [w], |t| {
        t[0].matmul(&t[0])?.add(&t[0].transpose(0, 1)?)
    });
}

// ---------------------------------------------------------------------------------------------
// A small network end to end

const COMPOSITE_STEP: f32 = 1e-3;

/// conv -> relu -> 2x2 max pool -> flatten -> dense -> softmax -> cross-entropy (mean).
fn small_network(t: &[Tensor], y: &Tensor) -> edgeflow_tensor::Result<Tensor> {
    let (x, kernel, bias, w, b) = (&t[0], &t[1], &t[2], &t[3], &t[4]);
    let h = x
        .conv2d(kernel, Some(bias), opts((1, 1), Padding::Valid))?
        .relu()?;
    let h = h
        .max_pool2d((2, 2), opts((2, 2), Padding::Valid))?
        .flatten_batch()?;
    let probs = h.matmul(w)?.add(b)?.softmax(-1)?;
    probs.sparse_cross_entropy_from_probs(y, 1e-7)?.mean_all()
}

/// The smallest distance of a pre-activation from the relu kink, and of a pooling window's
/// winner from its runner-up, at the given parameters.
fn kink_margin(x: &Tensor, kernel: &Tensor, bias: &Tensor) -> f32 {
    let pre = no_grad(|| x.conv2d(kernel, Some(bias), opts((1, 1), Padding::Valid))).unwrap();
    let pre_v = values(&pre);
    let mut margin = pre_v.iter().map(|v| v.abs()).fold(f32::INFINITY, f32::min);
    let [n, h, w, c] = pre.dims().try_into().unwrap();
    for b in 0..n {
        for oy in 0..h / 2 {
            for ox in 0..w / 2 {
                for ch in 0..c {
                    let mut win: Vec<f32> = (0..4)
                        .map(|i| pre_v[((b * h + 2 * oy + i / 2) * w + 2 * ox + i % 2) * c + ch])
                        .map(|v| v.max(0.0))
                        .collect();
                    win.sort_by(|a, b| b.total_cmp(a));
                    if win[0] > 0.0 {
                        margin = margin.min(win[0] - win[1]);
                    }
                }
            }
        }
    }
    margin
}

#[test]
fn composite_network_gradients_match_for_every_parameter() {
    let x = uniform(&[2, 6, 6, 2], -1.0, 1.0, 210);
    let kernel = uniform(&[3, 3, 2, 3], -1.0, 1.0, 211);
    let bias = uniform(&[3], -0.2, 0.2, 212);
    let w = uniform(&[12, 4], -1.0, 1.0, 213);
    let b = uniform(&[4], -0.2, 0.2, 214);
    let y = labels(&[1, 3]);

    // With |x|, |kernel| <= 1 a step h moves any pre-activation by at most h, and a gap
    // between two of them by at most 2h; a margin above that keeps the finite differences on
    // one side of every relu kink and pooling tie.
    let margin = kink_margin(&x, &kernel, &bias);
    assert!(
        margin > 3.0 * COMPOSITE_STEP,
        "seeds give a kink margin of only {margin}"
    );

    let cfg = GradCheck {
        step: COMPOSITE_STEP,
        ..DEFAULT
    };
    check_with(&cfg, "composite", [x, kernel, bias, w, b], |t| {
        small_network(t, &y)
    });
}

/// The same network with the fused `conv2d_relu` op.
fn small_network_fused(t: &[Tensor], y: &Tensor) -> edgeflow_tensor::Result<Tensor> {
    let (x, kernel, bias, w, b) = (&t[0], &t[1], &t[2], &t[3], &t[4]);
    let h = x.conv2d_relu(kernel, Some(bias), opts((1, 1), Padding::Valid))?;
    let h = h
        .max_pool2d((2, 2), opts((2, 2), Padding::Valid))?
        .flatten_batch()?;
    let probs = h.matmul(w)?.add(b)?.softmax(-1)?;
    probs.sparse_cross_entropy_from_probs(y, 1e-7)?.mean_all()
}

/// Checks the fused `conv2d_relu` network against finite differences and against the unfused
/// ops, bit for bit, with `filters` filters.
fn check_fused_conv_relu(name: &str, filters: usize, seed: u64) {
    let x = uniform(&[2, 6, 6, 2], -1.0, 1.0, seed);
    let kernel = uniform(&[3, 3, 2, filters], -1.0, 1.0, seed + 1);
    let bias = uniform(&[filters], -0.2, 0.2, seed + 2);
    let w = uniform(&[4 * filters, 4], -1.0, 1.0, seed + 3);
    let b = uniform(&[4], -0.2, 0.2, seed + 4);
    let y = labels(&[1, 3]);
    assert!(kink_margin(&x, &kernel, &bias) > 3.0 * COMPOSITE_STEP);

    let params = [x, kernel, bias, w, b];
    let cfg = GradCheck {
        step: COMPOSITE_STEP,
        ..DEFAULT
    };
    check_with(&cfg, name, params.clone(), |t| small_network_fused(t, &y));

    // The fused op computes exactly what conv2d followed by relu computes.
    let leaves: Vec<Tensor> = params
        .iter()
        .map(|t| t.clone().with_requires_grad(true))
        .collect();
    let fused = small_network_fused(&leaves, &y).unwrap();
    let plain = small_network(&leaves, &y).unwrap();
    assert_eq!(values(&fused), values(&plain));
    let (gf, gp) = (fused.backward().unwrap(), plain.backward().unwrap());
    for leaf in &leaves {
        assert_eq!(values(gf.get(leaf).unwrap()), values(gp.get(leaf).unwrap()));
    }
}

#[test]
fn fused_conv_relu_gradients_match_finite_differences_and_the_unfused_ops() {
    check_fused_conv_relu("fused composite", 3, 210);
    // 16 filters: the direct kernels, where the CPU has them.
    check_fused_conv_relu("fused composite, direct kernels", 16, 230);
}

// ---------------------------------------------------------------------------------------------
// Fused LSTM cell

/// The LSTM cell from separate ops, the way a layer without the fused op computes it.
fn lstm_cell_unfused(z: &Tensor, c_prev: &Tensor) -> edgeflow_tensor::Result<Tensor> {
    let u = c_prev.dims()[1];
    let i = z.narrow(1, 0, u)?.sigmoid()?;
    let f = z.narrow(1, u, u)?.sigmoid()?;
    let g = z.narrow(1, 2 * u, u)?.tanh()?;
    let o = z.narrow(1, 3 * u, u)?.sigmoid()?;
    let c = f.mul(c_prev)?.add(&i.mul(&g)?)?;
    let h = o.mul(&c.tanh()?)?;
    Tensor::concat(&[h, c], 1)
}

#[test]
fn lstm_cell_grads_for_gates_and_memory() {
    for (i, (batch, units)) in [(1, 1), (3, 2), (2, 5)].into_iter().enumerate() {
        let z = uniform(&[batch, 4 * units], -2.5, 2.5, 230 + i as u64);
        let c = uniform(&[batch, units], -1.5, 1.5, 240 + i as u64);
        check(&format!("lstm_cell {batch}x{units}"), [z, c], |t| {
            t[0].lstm_cell(&t[1])
        });
    }
}

#[test]
fn lstm_cell_equals_the_unfused_ops() {
    let z = uniform(&[4, 12], -4.0, 4.0, 250).with_requires_grad(true);
    let c = uniform(&[4, 3], -2.0, 2.0, 251).with_requires_grad(true);
    let weights = uniform(&[4, 6], -1.0, 1.0, 252);
    let fused = z.lstm_cell(&c).unwrap();
    let plain = lstm_cell_unfused(&z, &c).unwrap();
    let (vf, vp) = (values(&fused), values(&plain));
    for (a, b) in vf.iter().zip(&vp) {
        assert!(
            (a - b).abs() <= 1e-6 * (1.0 + b.abs()),
            "forward {a} vs {b}"
        );
    }

    let loss = |t: &Tensor| t.mul(&weights).unwrap().sum_all().unwrap();
    let (gf, gp) = (
        loss(&fused).backward().unwrap(),
        loss(&plain).backward().unwrap(),
    );
    for leaf in [&z, &c] {
        let (a, b) = (values(gf.get(leaf).unwrap()), values(gp.get(leaf).unwrap()));
        for (a, b) in a.iter().zip(&b) {
            assert!(
                (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                "gradient {a} vs {b}"
            );
        }
    }
}

#[test]
fn lstm_cell_rejects_mismatched_shapes() {
    let z = Tensor::zeros([2, 8]);
    for bad in [
        Tensor::zeros([2, 3]),
        Tensor::zeros([3, 2]),
        Tensor::zeros([2]),
    ] {
        let err = z.lstm_cell(&bad).unwrap_err().to_string();
        assert!(err.contains("lstm_cell"), "{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// The checker itself

#[test]
#[should_panic(expected = "gradients disagree")]
fn the_checker_catches_a_missing_gradient_path() {
    // d/dx (x * detach(x)) is 2x, but backward only sees one factor: the check must fail.
    check(
        "broken on purpose",
        &[uniform(&[2, 2], 0.5, 1.0, 220)],
        |t| t[0].mul(&t[0].detach()),
    );
}

#[test]
#[should_panic(expected = "gradients disagree")]
fn the_checker_catches_a_gradient_off_by_a_percent_or_two() {
    // y = x + 0.02 * detach(x): the analytic gradient misses the 2% term.
    check(
        "slightly broken on purpose",
        &[uniform(&[2, 2], 0.5, 1.0, 221)],
        |t| t[0].add(&t[0].detach().mul_scalar(0.02)?),
    );
}
