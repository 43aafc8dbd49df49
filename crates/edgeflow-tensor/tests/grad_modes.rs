//! Gradient recording on and off: inside `no_grad` no op records a backward step, so
//! prediction keeps no graph and no activations alive.

use edgeflow_tensor::{is_grad_enabled, no_grad, Conv2dOptions, Tensor};

fn leaf(shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
    Tensor::from_vec(values, shape.to_vec())
        .unwrap()
        .with_requires_grad(true)
}

/// A few ops of different kinds on leaves that require gradients.
fn ops(x: &Tensor, w: &Tensor, k: &Tensor) -> Vec<Tensor> {
    let mm = x.matmul(w).unwrap();
    let conv = x
        .reshape([1, 2, 3, 1])
        .unwrap()
        .conv2d(k, None, Conv2dOptions::default())
        .unwrap();
    vec![
        mm.relu().unwrap(),
        mm.softmax(-1).unwrap(),
        conv,
        mm.sum_all().unwrap(),
    ]
}

#[test]
fn no_grad_records_nothing_and_recording_resumes_after() {
    let (x, w, k) = (leaf(&[2, 3]), leaf(&[3, 4]), leaf(&[1, 1, 1, 2]));

    let off = no_grad(|| {
        assert!(!is_grad_enabled());
        ops(&x, &w, &k)
    });
    let on = ops(&x, &w, &k);

    assert!(is_grad_enabled());
    for t in &off {
        assert!(
            !t.has_grad_fn() && !t.requires_grad(),
            "recorded in no_grad: {t:?}"
        );
    }
    for t in &on {
        assert!(t.has_grad_fn() && t.requires_grad(), "not recorded: {t:?}");
    }
    // Same values either way.
    for (a, b) in off.iter().zip(&on) {
        assert_eq!(a.to_vec_f32().unwrap(), b.to_vec_f32().unwrap());
    }
}
