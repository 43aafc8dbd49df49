use edgeflow_tensor::{Conv2dOptions, Padding, Tensor};

#[test]
fn conv_case_same_stride2() {
    let x = Tensor::arange(36).reshape([1, 6, 6, 1]).unwrap();
    let k = Tensor::ones([3, 3, 1, 1]);
    let y = x
        .conv2d(
            &k,
            None,
            Conv2dOptions {
                strides: (2, 2),
                padding: Padding::Same,
            },
        )
        .unwrap();
    assert_eq!(y.dims(), &[1, 3, 3, 1]);
    assert_eq!(
        y.to_vec_f32().unwrap(),
        vec![63., 81., 63., 171., 189., 135., 168., 180., 126.]
    );
}

#[test]
fn dense_grad() {
    let w = Tensor::from_vec(vec![0.5f32, -1.0, 2.0, 0.25], [2, 2])
        .unwrap()
        .with_requires_grad(true);
    let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]).unwrap();
    let labels = Tensor::from_vec(vec![0i64, 1], [2]).unwrap();
    let loss = x
        .matmul(&w)
        .unwrap()
        .softmax(-1)
        .unwrap()
        .sparse_cross_entropy_from_probs(&labels, 1e-7)
        .unwrap()
        .mean_all()
        .unwrap();
    let g = loss.backward().unwrap();
    let gw = g.get(&w).unwrap().to_vec_f32().unwrap();
    // finite difference
    let f = |wv: Vec<f32>| {
        let w = Tensor::from_vec(wv, [2, 2]).unwrap();
        x.matmul(&w)
            .unwrap()
            .sparse_cross_entropy_with_logits(&labels)
            .unwrap()
            .mean_all()
            .unwrap()
            .to_scalar()
            .unwrap() as f64
    };
    let base = w.to_vec_f32().unwrap();
    for i in 0..4 {
        let mut p = base.clone();
        p[i] += 1e-2;
        let mut m = base.clone();
        m[i] -= 1e-2;
        let num = (f(p) - f(m)) / 2e-2;
        assert!((num - gw[i] as f64).abs() < 1e-3, "{i}: {num} vs {}", gw[i]);
    }
}
