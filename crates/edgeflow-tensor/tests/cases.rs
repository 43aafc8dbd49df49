//! The shared failure cases that concern tensors (`/work/shared/cases`): softmax overflow
//! (NUM-01), cross-entropy with large logits (NUM-02), `same` padding with stride 2 (CONV-01)
//! and max-pooling shape arithmetic (POOL-01). The numbers are copied from the case files.

mod common;

use common::{assert_close, assert_close_f32, values, Tolerance, EXACT};
use edgeflow_tensor::{Conv2dOptions, Padding, Tensor};

/// The cases' own tolerance for NUM-01: 1e-6 absolute.
const NUM01_ABS: Tolerance = Tolerance {
    rel: 0.0,
    abs: 1e-6,
};
/// The cases' own tolerance for NUM-02 and CONV-01: 1e-4 absolute.
const CASE_ABS_1E4: Tolerance = Tolerance {
    rel: 0.0,
    abs: 1e-4,
};

fn row(v: &[f32]) -> Tensor {
    Tensor::from_vec(v.to_vec(), [1, v.len()]).unwrap()
}

fn labels(v: &[i64]) -> Tensor {
    Tensor::from_vec(v.to_vec(), [v.len()]).unwrap()
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).fold(0, |best, i| if v[i] > v[best] { i } else { best })
}

// ---------------------------------------------------------------------------------------------
// NUM-01: softmax overflow and underflow

// The logits are copied digit for digit from the case file; f32 rounds them.
#[allow(clippy::excessive_precision)]
const NUM01: &[(&str, &[f32], &[f64])] = &[
    (
        "logits_from_report",
        &[
            -249.873093,
            -424.126709,
            -460.292542,
            378.097443,
            -292.614532,
        ],
        &[0.0, 0.0, 0.0, 1.0, 0.0],
    ),
    ("big_gap", &[1000.0, 0.0], &[1.0, 0.0]),
    ("all_very_negative", &[-1000.0, -1000.0], &[0.5, 0.5]),
    (
        "just_over_f32_exp_limit",
        &[89.0, 0.0],
        &[1.0, 2.22736391e-39],
    ),
];

#[test]
fn num01_softmax_is_finite_normalised_and_exact() {
    for &(name, logits, expected) in NUM01 {
        let p = values(&row(logits).softmax(-1).unwrap());
        assert!(p.iter().all(|v| v.is_finite()), "{name}: {p:?}");
        let sum: f64 = p.iter().map(|&v| v as f64).sum();
        assert!((sum - 1.0).abs() <= 1e-6, "{name}: row sums to {sum}");
        assert_close(name, &p, expected, NUM01_ABS);
        assert_eq!(argmax(&p), argmax(logits), "{name}: argmax changed");
    }
    // The case names the argmax of the report's logits explicitly.
    assert_eq!(argmax(&values(&row(NUM01[0].1).softmax(-1).unwrap())), 3);
}

#[test]
fn num01_softmax_of_a_batch_and_along_another_axis() {
    // All four vectors padded to one batch (padding with a very negative logit changes
    // nothing), and the same batch transposed with softmax along axis 0.
    let mut data = Vec::new();
    for &(_, logits, _) in NUM01 {
        let mut r = logits.to_vec();
        r.resize(5, -1.0e4);
        data.extend(r);
    }
    let batch = Tensor::from_vec(data, [NUM01.len(), 5]).unwrap();
    let by_rows = values(&batch.softmax(-1).unwrap());
    let by_cols = batch.transpose(0, 1).unwrap().softmax(0).unwrap();
    let by_cols = values(&by_cols.transpose(0, 1).unwrap().contiguous());
    for (i, &(name, _, expected)) in NUM01.iter().enumerate() {
        let mut want = expected.to_vec();
        want.resize(5, 0.0);
        assert_close(name, &by_rows[i * 5..(i + 1) * 5], &want, NUM01_ABS);
        assert_close(name, &by_cols[i * 5..(i + 1) * 5], &want, NUM01_ABS);
    }
}

#[test]
fn num01_log_softmax_is_finite_at_the_extremes() {
    let cases: [(&[f32], [f64; 2]); 2] = [
        (&[1000.0, 0.0], [0.0, -1000.0]),
        (&[-1000.0, 0.0], [-1000.0, 0.0]),
    ];
    for (logits, expected) in cases {
        let l = values(&row(logits).log_softmax(-1).unwrap());
        assert!(l.iter().all(|v| v.is_finite()), "{logits:?}: {l:?}");
        assert_close("log_softmax", &l, &expected, NUM01_ABS);
    }
}

// ---------------------------------------------------------------------------------------------
// NUM-02: cross-entropy with large logits

/// The two batches: logits, labels, per-sample losses.
fn num02_batches() -> [(Tensor, Tensor, Vec<f64>); 2] {
    let b1 = Tensor::from_vec(vec![300.0f32, 100.0, 100.0, -100.0, 200.0, 500.0], [2, 3]).unwrap();
    let b2 = Tensor::from_vec(vec![14.4f32, 50.1, 3.5], [1, 3]).unwrap();
    [
        (b1, labels(&[0, 1]), vec![0.0, 300.0]),
        (b2, labels(&[0]), vec![35.7]),
    ]
}

#[test]
fn num02_cross_entropy_with_logits_is_exact_for_large_logits() {
    for (logits, y, expected) in num02_batches() {
        let loss = values(&logits.sparse_cross_entropy_with_logits(&y).unwrap());
        assert_close("ce with logits", &loss, &expected, CASE_ABS_1E4);
    }
    let (b1, y1, _) = &num02_batches()[0];
    let mean = b1
        .sparse_cross_entropy_with_logits(y1)
        .unwrap()
        .mean_all()
        .unwrap();
    assert_eq!(mean.to_scalar().unwrap(), 150.0);
    // In f32, 50.1 - 14.4 is 35.699997: the exact f32-consistent answer.
    let (b2, y2, _) = &num02_batches()[1];
    let l = b2
        .sparse_cross_entropy_with_logits(y2)
        .unwrap()
        .to_scalar()
        .unwrap();
    assert_eq!(l, 35.699997);
}

#[test]
fn num02_softmax_then_cross_entropy_from_probs_gives_the_same_numbers() {
    for (logits, y, expected) in num02_batches() {
        let direct = values(&logits.sparse_cross_entropy_with_logits(&y).unwrap());
        let logits = logits.with_requires_grad(true);
        let probs = logits.softmax(-1).unwrap();
        let loss = probs.sparse_cross_entropy_from_probs(&y, 1e-7).unwrap();
        let got = values(&loss);
        assert_eq!(got, direct, "the softmax path differs from the logits path");
        assert_close("ce from softmax probs", &got, &expected, CASE_ABS_1E4);
        // Not capped at -ln(1e-7) = 16.118: the clipped-probability bug.
        assert!(got.iter().all(|&l| (l - 16.118_095).abs() > 1.0));

        let g = loss.mean_all().unwrap().backward().unwrap();
        let g = values(g.get(&logits).unwrap());
        assert!(g.iter().all(|v| v.is_finite()), "gradient {g:?}");
    }
}

#[test]
fn num02_probs_from_a_softmax_over_another_axis_are_used_as_given() {
    // Regression: the softmax output remembered its logits, and the cross-entropy recomputed
    // softmax from them along the LAST axis even when the softmax was taken along axis 0.
    let logits = Tensor::from_vec(vec![1.0f32, 2.0, 0.5, 3.0, -1.0, 0.0], [2, 3]).unwrap();
    let probs = logits.softmax(0).unwrap();
    let y = labels(&[2, 0]);
    let loss = values(&probs.sparse_cross_entropy_from_probs(&y, 1e-7).unwrap());
    let p = values(&probs);
    let want = [-(p[2] as f64).ln(), -(p[3] as f64).ln()];
    assert_close(
        "ce of axis-0 softmax",
        &loss,
        &want,
        common::F32_VS_F64_REFERENCE,
    );
}

// ---------------------------------------------------------------------------------------------
// CONV-01: `same` padding with stride 2 pads bottom/right only

fn conv01(kernel: [f32; 9], padding: Padding) -> Tensor {
    let x = Tensor::arange(36).reshape([1, 6, 6, 1]).unwrap();
    let k = Tensor::from_vec(kernel.to_vec(), [3, 3, 1, 1]).unwrap();
    x.conv2d(
        &k,
        None,
        Conv2dOptions {
            strides: (2, 2),
            padding,
        },
    )
    .unwrap()
}

const ONES3X3: [f32; 9] = [1.0; 9];
const ASYM3X3: [f32; 9] = [1.0, 2.0, 0.0, 0.0, 1.0, 0.0, -1.0, 0.0, 1.0];

#[test]
fn conv01_same_padding_stride_2() {
    let ones = conv01(ONES3X3, Padding::Same);
    assert_eq!(ones.dims(), &[1, 3, 3, 1]);
    let want_ones = [63.0, 81.0, 63.0, 171.0, 189.0, 135.0, 168.0, 180.0, 126.0];
    assert_close_f32("ones3x3 same", &values(&ones), &want_ones, CASE_ABS_1E4);

    let asym = conv01(ASYM3X3, Padding::Same);
    assert_eq!(asym.dims(), &[1, 3, 3, 1]);
    let want_asym = [11.0, 19.0, 9.0, 59.0, 67.0, 45.0, 105.0, 113.0, 121.0];
    assert_close_f32("asym3x3 same", &values(&asym), &want_asym, CASE_ABS_1E4);

    // What padding one row/column on every side would give: must not come out.
    let symmetric = [14.0f32, 30.0, 42.0, 75.0, 126.0, 144.0, 147.0, 234.0, 252.0];
    assert_ne!(values(&ones), symmetric);
}

#[test]
fn conv01_valid_stride_2() {
    let ones = conv01(ONES3X3, Padding::Valid);
    assert_eq!(ones.dims(), &[1, 2, 2, 1]);
    assert_close_f32(
        "ones3x3 valid",
        &values(&ones),
        &[63.0, 81.0, 171.0, 189.0],
        CASE_ABS_1E4,
    );
    // The case pads nothing at the top and left, so the valid windows are the top-left 2x2
    // windows of the `same` result.
    let asym = conv01(ASYM3X3, Padding::Valid);
    assert_close_f32(
        "asym3x3 valid",
        &values(&asym),
        &[11.0, 19.0, 59.0, 67.0],
        CASE_ABS_1E4,
    );
}

// ---------------------------------------------------------------------------------------------
// POOL-01: max-pooling output shapes and values

#[test]
fn pool01_max_pool_shapes_and_values() {
    #[allow(clippy::type_complexity)]
    let cases: [(
        &str,
        (usize, usize),
        usize,
        usize,
        Padding,
        (usize, usize),
        &[f32],
    ); 5] = [
        (
            "a_valid_k2_s2_5x5",
            (5, 5),
            2,
            2,
            Padding::Valid,
            (2, 2),
            &[6.0, 8.0, 16.0, 18.0],
        ),
        (
            "b_same_k2_s2_5x5",
            (5, 5),
            2,
            2,
            Padding::Same,
            (3, 3),
            &[6.0, 8.0, 9.0, 16.0, 18.0, 19.0, 21.0, 23.0, 24.0],
        ),
        (
            "c_same_k1_s2_6x7",
            (6, 7),
            1,
            2,
            Padding::Same,
            (3, 4),
            &[
                0.0, 2.0, 4.0, 6.0, 14.0, 16.0, 18.0, 20.0, 28.0, 30.0, 32.0, 34.0,
            ],
        ),
        (
            "d_same_k3_s4_8x10",
            (8, 10),
            3,
            4,
            Padding::Same,
            (2, 3),
            &[22.0, 26.0, 29.0, 62.0, 66.0, 69.0],
        ),
        (
            "e_valid_k3_s4_8x10",
            (8, 10),
            3,
            4,
            Padding::Valid,
            (2, 2),
            &[22.0, 26.0, 62.0, 66.0],
        ),
    ];
    for (name, (h, w), k, s, padding, out_hw, expected) in cases {
        let x = Tensor::arange(h * w).reshape([1, h, w, 1]).unwrap();
        let y = x
            .max_pool2d(
                (k, k),
                Conv2dOptions {
                    strides: (s, s),
                    padding,
                },
            )
            .unwrap();
        assert_eq!(y.dims(), &[1, out_hw.0, out_hw.1, 1], "{name}");
        let got = values(&y);
        assert!(got.iter().all(|v| v.is_finite()), "{name}: {got:?}");
        assert_close_f32(name, &got, expected, EXACT);
    }
}
