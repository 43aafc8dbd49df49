//! The kernels against the independent numpy references in `tests/fixtures/` (made by
//! `make_fixtures.py`; see the README there for the layout and conventions).
//!
//! Inputs are exact f32 values; expected values are f64 and compared with
//! [`F32_VS_F64_REFERENCE`].

mod common;

use std::path::PathBuf;

use common::{assert_close, values, F32_VS_F64_REFERENCE};
use edgeflow_tensor::{Conv2dOptions, Padding, Tensor};
use serde_json::Value;

/// Fixture cases of ops the crate deliberately does not have, by `op` name: the tanh
/// approximation of GELU (the crate implements the exact erf form only).
const NOT_IMPLEMENTED_OPS: &[&str] = &["gelu_tanh"];

fn load(file: &str) -> Vec<Value> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", file]
        .iter()
        .collect();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()));
    let cases = doc["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("{file}: no `cases` array"));
    assert!(!cases.is_empty(), "{file}: no cases");
    cases.clone()
}

fn dims(t: &Value) -> Vec<usize> {
    t["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect()
}

fn f64s(t: &Value) -> Vec<f64> {
    t["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

/// A fixture tensor as f32 (exact: every input value is an f32 value written in full).
fn tensor(t: &Value) -> Tensor {
    let data: Vec<f32> = f64s(t).into_iter().map(|v| v as f32).collect();
    Tensor::from_vec(data, dims(t)).unwrap()
}

fn pair(v: &Value) -> (usize, usize) {
    let a = v.as_array().unwrap();
    (
        a[0].as_u64().unwrap() as usize,
        a[1].as_u64().unwrap() as usize,
    )
}

fn window_options(params: &Value) -> Conv2dOptions {
    let padding = match params["padding"].as_str().unwrap() {
        "valid" => Padding::Valid,
        "same" => Padding::Same,
        other => panic!("unknown padding {other}"),
    };
    Conv2dOptions {
        strides: pair(&params["strides"]),
        padding,
    }
}

/// Compares a result with a case's `expected` tensor, shape and values.
fn compare(name: &str, got: &Tensor, case: &Value) {
    let expected = &case["expected"];
    assert_eq!(got.dims(), dims(expected).as_slice(), "{name}: shape");
    assert_close(name, &values(got), &f64s(expected), F32_VS_F64_REFERENCE);
}

fn name(case: &Value) -> &str {
    case["name"].as_str().unwrap()
}

#[test]
fn conv2d_matches_the_numpy_reference() {
    for case in load("conv2d.json") {
        assert_eq!(case["op"], "conv2d");
        let params = &case["params"];
        let kernel = tensor(&case["kernel"]);
        assert_eq!(
            pair(&params["kernel_size"]),
            (kernel.dims()[0], kernel.dims()[1])
        );
        let bias = tensor(&case["bias"]);
        let o = window_options(params);
        let got = tensor(&case["input"])
            .conv2d(&kernel, Some(&bias), o)
            .unwrap();
        compare(name(&case), &got, &case);
    }
}

#[test]
fn pooling_matches_the_numpy_reference() {
    for case in load("pool2d.json") {
        let params = &case["params"];
        let (x, pool, o) = (
            tensor(&case["input"]),
            pair(&params["pool_size"]),
            window_options(params),
        );
        let got = match case["op"].as_str().unwrap() {
            "max_pool2d" => x.max_pool2d(pool, o).unwrap(),
            "avg_pool2d" => x.avg_pool2d(pool, o).unwrap(),
            other => panic!("{}: unknown op {other}", name(&case)),
        };
        compare(name(&case), &got, &case);
    }
}

#[test]
fn softmax_matches_the_numpy_reference() {
    for case in load("softmax.json") {
        let axis = case["params"]["axis"].as_i64().unwrap() as isize;
        let x = tensor(&case["input"]);
        let got = match case["op"].as_str().unwrap() {
            "softmax" => x.softmax(axis).unwrap(),
            "log_softmax" => x.log_softmax(axis).unwrap(),
            other => panic!("{}: unknown op {other}", name(&case)),
        };
        compare(name(&case), &got, &case);
    }
}

#[test]
fn layer_norm_matches_the_numpy_reference() {
    for case in load("layer_norm.json") {
        assert_eq!(case["op"], "layer_norm");
        assert_eq!(case["params"]["axis"], -1);
        let eps = case["params"]["epsilon"].as_f64().unwrap() as f32;
        let (gamma, beta) = (tensor(&case["gamma"]), tensor(&case["beta"]));
        let got = tensor(&case["input"])
            .layer_norm(&gamma, &beta, eps)
            .unwrap();
        compare(name(&case), &got, &case);
    }
}

#[test]
fn activations_match_the_numpy_reference() {
    let mut skipped = Vec::new();
    for case in load("activations.json") {
        let x = tensor(&case["input"]);
        let got = match case["op"].as_str().unwrap() {
            "gelu_erf" => x.gelu().unwrap(),
            "sigmoid" => x.sigmoid().unwrap(),
            "tanh" => x.tanh().unwrap(),
            other if NOT_IMPLEMENTED_OPS.contains(&other) => {
                skipped.push(other.to_string());
                continue;
            }
            other => panic!("{}: unknown op {other}", name(&case)),
        };
        compare(name(&case), &got, &case);
    }
    assert_eq!(
        skipped, NOT_IMPLEMENTED_OPS,
        "an expected case is missing from the fixture"
    );
}
