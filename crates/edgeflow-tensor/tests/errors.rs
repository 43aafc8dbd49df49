//! Bad operands give typed errors that name the op and the shapes or values at fault, and
//! never a panic (a panic fails these tests).

use edgeflow_tensor::{Conv2dOptions, Padding, Rng, Shape, Tensor, TensorError};

fn t(shape: &[usize]) -> Tensor {
    Tensor::ones(shape.to_vec())
}

fn labels(v: &[i64]) -> Tensor {
    Tensor::from_vec(v.to_vec(), [v.len()]).unwrap()
}

fn valid() -> Conv2dOptions {
    Conv2dOptions {
        strides: (1, 1),
        padding: Padding::Valid,
    }
}

/// Asserts a shape mismatch naming `op` and both shapes, in the value and in the message.
fn assert_mismatch(err: TensorError, op: &str, lhs: &[usize], rhs: &[usize]) {
    let msg = err.to_string();
    assert_eq!(
        err,
        TensorError::ShapeMismatch {
            op: op.to_string().leak(),
            lhs: lhs.to_vec(),
            rhs: rhs.to_vec()
        }
    );
    for part in [op.to_string(), format!("{lhs:?}"), format!("{rhs:?}")] {
        assert!(msg.contains(&part), "{msg:?} does not mention {part}");
    }
}

#[test]
fn binary_ops_name_both_shapes() {
    let (a, b) = (t(&[2, 3]), t(&[4]));
    assert_mismatch(a.add(&b).unwrap_err(), "add", &[2, 3], &[4]);
    assert_mismatch(a.sub(&b).unwrap_err(), "sub", &[2, 3], &[4]);
    assert_mismatch(a.mul(&b).unwrap_err(), "mul", &[2, 3], &[4]);
    assert_mismatch(b.div(&a).unwrap_err(), "div", &[4], &[2, 3]);
    assert_mismatch(
        t(&[2, 3]).add(&t(&[3, 2])).unwrap_err(),
        "add",
        &[2, 3],
        &[3, 2],
    );
}

#[test]
fn matmul_names_both_shapes() {
    assert_mismatch(
        t(&[2, 3]).matmul(&t(&[4, 5])).unwrap_err(),
        "matmul",
        &[2, 3],
        &[4, 5],
    );
    // Batched with different batch sizes, and a vector operand.
    let err = t(&[2, 3, 4]).matmul(&t(&[3, 4, 5])).unwrap_err();
    assert_mismatch(err, "matmul", &[2, 3, 4], &[3, 4, 5]);
    assert_mismatch(
        t(&[3]).matmul(&t(&[3, 2])).unwrap_err(),
        "matmul",
        &[3],
        &[3, 2],
    );
}

#[test]
fn matmul_of_a_batch_with_a_matrix_names_the_callers_shapes() {
    // Regression: the `[.., m, k] x [k, n]` path folded the batch into the rows first and then
    // reported the folded shape ([6, 4]) instead of the caller's.
    let err = t(&[2, 3, 4]).matmul(&t(&[5, 6])).unwrap_err();
    assert_mismatch(err, "matmul", &[2, 3, 4], &[5, 6]);
}

#[test]
fn conv2d_channel_and_bias_mismatches() {
    let x = t(&[1, 5, 5, 3]);
    let err = x.conv2d(&t(&[3, 3, 2, 4]), None, valid()).unwrap_err();
    assert_mismatch(err, "conv2d", &[1, 5, 5, 3], &[3, 3, 2, 4]);
    let err = x
        .conv2d(&t(&[3, 3, 3, 4]), Some(&t(&[5])), valid())
        .unwrap_err();
    assert_mismatch(err, "conv2d bias", &[3, 3, 3, 4], &[5]);
}

#[test]
fn windows_larger_than_the_input_with_valid_padding() {
    let x = t(&[1, 2, 4, 1]);
    let err = x.conv2d(&t(&[3, 3, 1, 1]), None, valid()).unwrap_err();
    let TensorError::InvalidShape { op, shape, reason } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((*op, shape.as_slice()), ("conv2d", &[1, 2, 4, 1][..]));
    assert!(
        reason.contains("3x3") && err.to_string().contains("[1, 2, 4, 1]"),
        "{err}"
    );

    for (op, result) in [
        ("max_pool2d", x.max_pool2d((3, 3), valid())),
        ("avg_pool2d", x.avg_pool2d((3, 1), valid())),
    ] {
        let err = result.unwrap_err();
        assert!(
            matches!(err, TensorError::InvalidShape { op: o, .. } if o == op),
            "{err:?}"
        );
    }
    // The same windows fit with `same` padding.
    let same = Conv2dOptions {
        strides: (1, 1),
        padding: Padding::Same,
    };
    assert_eq!(x.max_pool2d((3, 3), same).unwrap().dims(), &[1, 2, 4, 1]);
}

#[test]
fn window_arguments_and_ranks() {
    let x = t(&[1, 4, 4, 1]);
    let zero_stride = Conv2dOptions {
        strides: (0, 1),
        padding: Padding::Valid,
    };
    let err = x.max_pool2d((2, 2), zero_stride).unwrap_err();
    assert!(
        matches!(
            err,
            TensorError::InvalidArgument {
                op: "max_pool2d",
                ..
            }
        ),
        "{err:?}"
    );
    let err = x.conv2d(&t(&[1, 1, 1, 1]), None, zero_stride).unwrap_err();
    assert!(
        matches!(err, TensorError::InvalidArgument { op: "conv2d", .. }),
        "{err:?}"
    );
    let err = x.max_pool2d((0, 2), valid()).unwrap_err();
    assert!(
        matches!(err, TensorError::InvalidArgument { .. }),
        "{err:?}"
    );
    let err = t(&[4, 4, 1])
        .conv2d(&t(&[3, 3, 1, 1]), None, valid())
        .unwrap_err();
    assert!(
        matches!(err, TensorError::InvalidShape { op: "conv2d", .. }),
        "{err:?}"
    );
    let err = x.conv2d(&t(&[3, 3, 1]), None, valid()).unwrap_err();
    assert!(
        matches!(err, TensorError::InvalidShape { op: "conv2d", .. }),
        "{err:?}"
    );
}

#[test]
fn windows_over_empty_dimensions_do_not_panic() {
    let same = Conv2dOptions {
        strides: (1, 1),
        padding: Padding::Same,
    };
    // No channels or no rows: a shape error naming the op.
    for shape in [[1, 4, 4, 0], [1, 0, 4, 1]] {
        let x = t(&shape);
        for (op, result) in [
            ("max_pool2d", x.max_pool2d((2, 2), same)),
            ("avg_pool2d", x.avg_pool2d((2, 2), same)),
            ("conv2d", x.conv2d(&t(&[3, 3, shape[3], 2]), None, same)),
        ] {
            let err = result.unwrap_err();
            assert!(
                matches!(err, TensorError::InvalidShape { op: o, .. } if o == op),
                "{err:?}"
            );
        }
    }
    // An empty batch is fine and gives an empty batch.
    let y = t(&[0, 4, 4, 2])
        .conv2d(&t(&[3, 3, 2, 3]), None, same)
        .unwrap();
    assert_eq!(y.dims(), &[0, 4, 4, 3]);
    assert_eq!(
        t(&[0, 4, 4, 2]).max_pool2d((2, 2), same).unwrap().dims(),
        &[0, 4, 4, 2]
    );
}

#[test]
fn matmul_with_an_empty_inner_dimension_is_zero() {
    // Regression: the `[.., m, k] x [k, n]` path derived the row count by dividing by k, which
    // gave 0 rows for k = 0 and then an element-count error instead of zeros.
    let y = t(&[2, 3, 0]).matmul(&t(&[0, 4])).unwrap();
    assert_eq!(y.dims(), &[2, 3, 4]);
    assert!(y.to_vec_f32().unwrap().iter().all(|&v| v == 0.0));
    assert_eq!(
        t(&[3, 0])
            .matmul(&t(&[0, 4]))
            .unwrap()
            .to_vec_f32()
            .unwrap(),
        vec![0.0; 12]
    );
}

/// Asserts a label error naming the op, the bad label, its position and the class count.
fn assert_bad_label(err: TensorError, label: i64, position: usize, classes: usize) {
    let expected = TensorError::IndexOutOfRange {
        op: "sparse_cross_entropy",
        index: label,
        position,
        limit: classes,
    };
    assert_eq!(err, expected);
    let msg = err.to_string();
    for part in [label.to_string(), position.to_string(), classes.to_string()] {
        assert!(msg.contains(&part), "{msg:?} does not mention {part}");
    }
}

#[test]
fn labels_out_of_range_name_the_label_its_position_and_the_classes() {
    let logits = Tensor::from_vec(vec![0.5f32, -0.5, 1.0, 2.0, 0.0, 0.0], [3, 2]).unwrap();
    let probs_plain = Tensor::full(0.5, [3, 2]);
    let probs_softmax = logits.softmax(-1).unwrap();
    for (bad, position, y) in [(100, 1, labels(&[0, 100, 1])), (-1, 2, labels(&[1, 0, -1]))] {
        assert_bad_label(
            logits.sparse_cross_entropy_with_logits(&y).unwrap_err(),
            bad,
            position,
            2,
        );
        let err = probs_plain
            .sparse_cross_entropy_from_probs(&y, 1e-7)
            .unwrap_err();
        assert_bad_label(err, bad, position, 2);
        let err = probs_softmax
            .sparse_cross_entropy_from_probs(&y, 1e-7)
            .unwrap_err();
        assert_bad_label(err, bad, position, 2);
    }
}

#[test]
fn label_count_dtype_and_logit_rank() {
    let logits = t(&[3, 2]);
    let err = logits
        .sparse_cross_entropy_with_logits(&labels(&[0, 1]))
        .unwrap_err();
    assert!(matches!(err, TensorError::InvalidShape { .. }), "{err:?}");
    let float_labels = Tensor::from_vec(vec![0.0f32, 1.0, 0.0], [3]).unwrap();
    let err = logits
        .sparse_cross_entropy_with_logits(&float_labels)
        .unwrap_err();
    assert!(matches!(err, TensorError::DTypeMismatch { .. }), "{err:?}");
    let err = t(&[2, 3, 2])
        .sparse_cross_entropy_with_logits(&labels(&[0, 1]))
        .unwrap_err();
    assert!(matches!(err, TensorError::InvalidShape { .. }), "{err:?}");
}

#[test]
fn index_errors_of_gathers() {
    let table = t(&[4, 3]);
    let ids = Tensor::from_vec(vec![0i64, 3, 4, 1], [2, 2]).unwrap();
    let expected = TensorError::IndexOutOfRange {
        op: "embedding",
        index: 4,
        position: 2,
        limit: 4,
    };
    assert_eq!(table.embedding(&ids).unwrap_err(), expected);
    let neg = Tensor::from_vec(vec![-3i64], [1]).unwrap();
    assert!(matches!(
        table.embedding(&neg),
        Err(TensorError::IndexOutOfRange { index: -3, .. })
    ));
    let expected = TensorError::IndexOutOfRange {
        op: "select_rows",
        index: 9,
        position: 1,
        limit: 4,
    };
    assert_eq!(table.select_rows(&[1, 9]).unwrap_err(), expected);
}

#[test]
fn shape_op_errors() {
    let x = t(&[2, 3]);
    let err = x.reshape([4, 2]).unwrap_err();
    assert!(
        matches!(err, TensorError::ElementCount { op: "reshape", .. }),
        "{err:?}"
    );
    let err = Tensor::from_vec(vec![1.0f32; 5], [2, 3]).unwrap_err();
    assert!(
        matches!(
            err,
            TensorError::ElementCount {
                len: 5,
                expected: 6,
                ..
            }
        ),
        "{err:?}"
    );
    let err = x.sum_axis(2, false).unwrap_err();
    assert_eq!(
        err,
        TensorError::AxisOutOfRange {
            op: "sum_axis",
            axis: 2,
            rank: 2
        }
    );
    assert!(matches!(
        x.softmax(-3),
        Err(TensorError::AxisOutOfRange { axis: -3, .. })
    ));
    assert!(matches!(
        x.transpose(0, 5),
        Err(TensorError::AxisOutOfRange { .. })
    ));
    assert!(matches!(
        x.permute(&[0, 0]),
        Err(TensorError::InvalidArgument { .. })
    ));
    assert!(matches!(
        x.narrow(1, 2, 2),
        Err(TensorError::InvalidArgument { op: "narrow", .. })
    ));
    let err = Tensor::concat(&[x.clone(), t(&[2, 4])], 0).unwrap_err();
    assert_mismatch(err, "concat", &[2, 3], &[2, 4]);
    assert!(matches!(
        Tensor::concat(&[], 0),
        Err(TensorError::InvalidArgument { .. })
    ));
    let err = x.broadcast_to(&Shape::new([2, 4])).unwrap_err();
    assert!(
        matches!(
            err,
            TensorError::ShapeMismatch {
                op: "broadcast_to",
                ..
            }
        ),
        "{err:?}"
    );
    let err = x.broadcast_to(&Shape::new([1, 3])).unwrap_err();
    assert_mismatch(err, "broadcast_to", &[2, 3], &[1, 3]);
}

#[test]
fn layer_norm_dropout_and_backward_errors() {
    let x = t(&[2, 3]);
    let err = x.layer_norm(&t(&[4]), &t(&[3]), 1e-3).unwrap_err();
    assert_mismatch(err, "layer_norm", &[2, 3], &[4]);
    for rate in [1.0, -0.1, f32::NAN] {
        let err = x.dropout(rate, &mut Rng::seed(0)).unwrap_err();
        assert!(
            matches!(err, TensorError::InvalidArgument { op: "dropout", .. }),
            "{err:?}"
        );
    }
    let w = x.clone().with_requires_grad(true);
    assert!(matches!(
        w.mul_scalar(2.0).unwrap().backward(),
        Err(TensorError::Backward(_))
    ));
    assert!(matches!(
        x.sum_all().unwrap().backward(),
        Err(TensorError::Backward(_))
    ));
}

#[test]
fn dtype_errors() {
    let ints = Tensor::from_vec(vec![1i64, 2, 3], [3]).unwrap();
    let err = ints.add(&t(&[3])).unwrap_err();
    assert!(
        matches!(err, TensorError::DTypeMismatch { op: "add", .. }),
        "{err:?}"
    );
    assert!(matches!(
        ints.relu(),
        Err(TensorError::DTypeMismatch { op: "relu", .. })
    ));
    assert!(matches!(
        ints.to_vec_f32(),
        Err(TensorError::DTypeMismatch { .. })
    ));
}
