//! Gradients through many slices of one tensor, as a recurrent layer takes them step by step:
//! the slices' gradients are added into one input-sized gradient in place, so they must land
//! where each slice was read, add up where slices overlap, and add to the gradient of any other
//! use of the same tensor.

use edgeflow_tensor::Tensor;

fn values(t: &Tensor) -> Vec<f32> {
    t.to_vec_f32().unwrap()
}

#[test]
fn slice_gradients_land_in_place_add_up_and_join_other_uses() {
    // x: [2, 4, 3]; each step t reads x[:, t, :] and weighs it by (t + 1); steps 1..3 are also
    // read again as one wider (overlapping) slice weighed by 10; and x is used whole, weighed
    // by 100.
    let n = 2 * 4 * 3;
    let x = Tensor::from_vec(
        (0..n).map(|i| i as f32 * 0.1).collect::<Vec<_>>(),
        [2, 4, 3],
    )
    .unwrap()
    .with_requires_grad(true);
    let mut loss = x.mul_scalar(100.0).unwrap().sum_all().unwrap();
    for t in 0..4 {
        let step = x
            .narrow(1, t, 1)
            .unwrap()
            .mul_scalar((t + 1) as f32)
            .unwrap();
        loss = loss.add(&step.sum_all().unwrap()).unwrap();
    }
    let wide = x.narrow(1, 1, 2).unwrap().mul_scalar(10.0).unwrap();
    loss = loss.add(&wide.sum_all().unwrap()).unwrap();

    let grads = loss.backward().unwrap();

    let got = values(grads.get(&x).unwrap());
    let mut want = Vec::with_capacity(n);
    for _batch in 0..2 {
        for t in 0..4 {
            let overlap = if (1..3).contains(&t) { 10.0 } else { 0.0 };
            want.extend([100.0 + (t + 1) as f32 + overlap; 3]);
        }
    }
    assert_eq!(got, want);
}

#[test]
fn a_tensor_read_only_through_slices_gets_zeros_where_no_slice_reads() {
    let x = Tensor::from_vec(vec![1.0f32; 12], [3, 4])
        .unwrap()
        .with_requires_grad(true);
    let loss = x.narrow(1, 1, 2).unwrap().sum_all().unwrap();

    let grads = loss.backward().unwrap();

    let row = [0.0, 1.0, 1.0, 0.0];
    let want: Vec<f32> = (0..3).flat_map(|_| row).collect();
    assert_eq!(values(grads.get(&x).unwrap()), want);
}
