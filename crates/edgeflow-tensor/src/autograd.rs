//! Reverse-mode automatic differentiation.
//!
//! An operation whose inputs need gradients, run while gradient recording is on, attaches a
//! [`Node`] to its output: the inputs and a closure that maps the output's gradient to the
//! inputs' gradients. [`Tensor::backward`] walks these nodes from a scalar in reverse
//! topological order. With recording off ([`no_grad`]) nothing is attached at all, so inference
//! pays nothing for training.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Result, TensorError};
use crate::tensor::{Tensor, TensorId};

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether operations on this thread currently record a graph.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Runs `f` with gradient recording off on this thread, restoring the previous mode afterwards
/// (also when `f` panics).
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            GRAD_ENABLED.with(|g| g.set(self.0));
        }
    }
    let _restore = Restore(GRAD_ENABLED.with(|g| g.replace(false)));
    f()
}

/// Maps the gradient of an operation's output to the gradients of its inputs.
///
/// Arguments: the inputs, the output gradient, and which inputs need a gradient. Returns one
/// entry per input; `None` where none is needed.
pub(crate) type BackwardFn =
    dyn Fn(&[Tensor], &Tensor, &[bool]) -> Result<Vec<Option<Tensor>>> + Send + Sync;

/// Adds the output's gradient (first argument) into the whole input's gradient buffer (second
/// argument, contiguous, of the input's shape), for an op that reads a part of one input.
pub(crate) type AddIntoFn = dyn Fn(&Tensor, &mut [f32]) -> Result<()> + Send + Sync;

/// One recorded operation.
pub(crate) struct Node {
    pub(crate) name: &'static str,
    pub(crate) inputs: Vec<Tensor>,
    pub(crate) backward: Box<BackwardFn>,
    /// For an op that reads a part of its single input (a slice): adds its gradient into the
    /// input's accumulated gradient in place, instead of building an input-sized tensor that
    /// is mostly zeros. A recurrent layer slices one step after another out of the same
    /// tensor, and building those would cost steps x the tensor's size.
    pub(crate) add_into: Option<Box<AddIntoFn>>,
}

/// Attaches a graph node to `out` when recording is on and an input needs a gradient.
pub(crate) fn record(
    out: Tensor,
    name: &'static str,
    inputs: Vec<Tensor>,
    backward: impl Fn(&[Tensor], &Tensor, &[bool]) -> Result<Vec<Option<Tensor>>>
        + Send
        + Sync
        + 'static,
) -> Tensor {
    attach(out, name, inputs, Box::new(backward), None)
}

/// [`record`] for an op that reads a part of its single `input`: `backward` as there, and
/// `add_into` the in-place form used while gradients are accumulated (see [`Node::add_into`]).
pub(crate) fn record_part(
    out: Tensor,
    name: &'static str,
    input: Tensor,
    backward: impl Fn(&[Tensor], &Tensor, &[bool]) -> Result<Vec<Option<Tensor>>>
        + Send
        + Sync
        + 'static,
    add_into: impl Fn(&Tensor, &mut [f32]) -> Result<()> + Send + Sync + 'static,
) -> Tensor {
    attach(
        out,
        name,
        vec![input],
        Box::new(backward),
        Some(Box::new(add_into)),
    )
}

fn attach(
    out: Tensor,
    name: &'static str,
    inputs: Vec<Tensor>,
    backward: Box<BackwardFn>,
    add_into: Option<Box<AddIntoFn>>,
) -> Tensor {
    #[cfg(feature = "profile")]
    crate::profile::forward_done(name);
    if !is_grad_enabled() || !inputs.iter().any(Tensor::requires_grad) {
        return out;
    }
    let mut out = out;
    let inner = Arc::make_mut(&mut out.inner);
    inner.requires_grad = true;
    inner.node = Some(Arc::new(Node {
        name,
        inputs,
        backward,
        add_into,
    }));
    out
}

/// Gradients of a scalar with respect to the leaf tensors that require them.
#[derive(Debug, Default)]
pub struct Gradients {
    map: HashMap<TensorId, Tensor>,
}

impl Gradients {
    /// The gradient of `tensor`, if it received one.
    pub fn get(&self, tensor: &Tensor) -> Option<&Tensor> {
        self.map.get(&tensor.id())
    }

    /// The gradient for a tensor id.
    pub fn get_id(&self, id: TensorId) -> Option<&Tensor> {
        self.map.get(&id)
    }

    /// Takes the gradient of `tensor` out of the set.
    pub fn remove(&mut self, tensor: &Tensor) -> Option<Tensor> {
        self.map.remove(&tensor.id())
    }

    /// Number of tensors with a gradient.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no gradient was computed.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl Tensor {
    /// Computes the gradient of this scalar with respect to every leaf that requires one.
    ///
    /// # Errors
    /// [`TensorError::Backward`] when `self` is not a one-element tensor or does not depend on
    /// anything that requires a gradient; errors of the backward kernels otherwise.
    pub fn backward(&self) -> Result<Gradients> {
        if self.elem_count() != 1 {
            return Err(TensorError::Backward(format!(
                "can only start from a one-element tensor, got shape {:?}",
                self.dims()
            )));
        }
        if !self.requires_grad() {
            return Err(TensorError::Backward(
                "the tensor does not depend on any tensor that requires a gradient".into(),
            ));
        }
        let seed = Tensor::ones(self.shape().clone());
        crate::autograd::no_grad(|| backward_from(self, seed))
    }
}

fn backward_from(root: &Tensor, seed: Tensor) -> Result<Gradients> {
    let order = topological_order(root);
    let mut pending: HashMap<TensorId, Tensor> = HashMap::new();
    pending.insert(root.id(), seed);
    let mut leaves = Gradients::default();

    for tensor in order.iter().rev() {
        let Some(grad) = pending.remove(&tensor.id()) else {
            continue;
        };
        let Some(node) = &tensor.inner.node else {
            leaves.map.insert(tensor.id(), grad);
            continue;
        };
        let needs: Vec<bool> = node.inputs.iter().map(Tensor::requires_grad).collect();
        if let (Some(add_into), [input], [true]) = (&node.add_into, &node.inputs[..], &needs[..]) {
            #[cfg(feature = "profile")]
            let started = std::time::Instant::now();
            let mut acc = match pending.remove(&input.id()) {
                Some(acc) => acc,
                None => Tensor::zeros(input.dims().to_vec()),
            };
            let mut added = Ok(());
            acc.update_f32(|buf| added = add_into(&grad, buf))?;
            added?;
            #[cfg(feature = "profile")]
            crate::profile::backward_done(node.name, started.elapsed());
            pending.insert(input.id(), acc);
            continue;
        }
        #[cfg(feature = "profile")]
        let started = std::time::Instant::now();
        let grads = (node.backward)(&node.inputs, &grad, &needs)?;
        #[cfg(feature = "profile")]
        crate::profile::backward_done(node.name, started.elapsed());
        for ((input, g), need) in node.inputs.iter().zip(grads).zip(needs) {
            let Some(g) = g else { continue };
            if !need {
                continue;
            }
            if g.dims() != input.dims() {
                return Err(TensorError::Backward(format!(
                    "{}: gradient shape {:?} differs from input shape {:?}",
                    node.name,
                    g.dims(),
                    input.dims()
                )));
            }
            accumulate(&mut pending, input.id(), g)?;
        }
    }
    Ok(leaves)
}

fn accumulate(pending: &mut HashMap<TensorId, Tensor>, id: TensorId, g: Tensor) -> Result<()> {
    match pending.remove(&id) {
        Some(prev) => {
            pending.insert(id, prev.add(&g)?);
        }
        None => {
            pending.insert(id, g);
        }
    }
    Ok(())
}

/// Tensors reachable from `root` that require gradients, each after all of its inputs.
fn topological_order(root: &Tensor) -> Vec<Tensor> {
    let mut order = Vec::new();
    let mut visited = std::collections::HashSet::new();
    // Iterative depth-first search: long recurrent graphs would overflow the call stack.
    let mut stack: Vec<(Tensor, bool)> = vec![(root.clone(), false)];
    while let Some((tensor, expanded)) = stack.pop() {
        if expanded {
            order.push(tensor);
            continue;
        }
        if !visited.insert(tensor.id()) {
            continue;
        }
        stack.push((tensor.clone(), true));
        if let Some(node) = &tensor.inner.node {
            for input in &node.inputs {
                if input.requires_grad() && !visited.contains(&input.id()) {
                    stack.push((input.clone(), false));
                }
            }
        }
    }
    order
}
