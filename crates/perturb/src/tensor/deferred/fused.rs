//! A requested value's region of pending element-wise operations, run as one fused chain.
//!
//! The region is found depth first from the requested operation, through pending inputs of
//! the same shape that fuse too. Its inputs from outside are computed values (leaves of the
//! chain, a one-element one standing for every position) or operations still to compute
//! first (returned as waiting: the caller computes them and asks again). Inside, each
//! operation runs once per block; written out are the requested values and the operations
//! something outside the region still holds, unless they are cheap to compute again (at most
//! [`RECOMPUTE`] operations from written values): those stay pending, so that a value nobody
//! asks for again is never written, and one that is asked for costs a bounded recomputation.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use super::{Deferred, Node, State};
use crate::error::Error;
use crate::tensor::fusion::{Chain, MAX_ARITY};
use crate::tensor::Array;

/// The fewest elements for which a chain is built: below, the unfused operations are as cheap.
const MIN_LEN: usize = 64;

/// Element-wise operations on rayon's pool from here ([`kernels::Cost`]'s threshold for
/// transcendental functions); a chain runs on one thread, so these sizes run unfused.
///
/// [`kernels::Cost`]: crate::tensor::kernels::Cost
const MAX_LEN: usize = 1 << 14;

/// The most operations a member held outside the region may take to compute again, for it
/// not to be written out.
const RECOMPUTE: usize = 2;

/// The most operations in one chain: its scratch, one block of each, stays in L2 (256 KiB of
/// `f64`); a larger region is cut, its far part computed first as a region of its own.
const MAX_NODES: usize = 64;

/// Whether values of `shape` are computed fused.
pub(super) fn fits(shape: &[usize]) -> bool {
    (MIN_LEN..MAX_LEN).contains(&shape.iter().product::<usize>())
}

type Key<A> = *const Node<A>;

fn key<A: Array>(x: &Deferred<A>) -> Key<A> {
    Rc::as_ptr(&x.node)
}

/// Where an input of the region stands.
enum Input {
    /// Computed: a leaf of the chain.
    Computed,
    /// Pending and fusing, of the region's shape: a member of the region.
    Member,
    /// To be computed first (an operation that does not fuse, of another shape, or past the
    /// region's size limit), or failed.
    Waiting,
}

fn classify<A: Array>(x: &Deferred<A>, shape: &[usize]) -> Input {
    match &*x.node.state.borrow() {
        State::Computed(_) => Input::Computed,
        State::Pending { fuses: true, .. } if x.node.shape == shape => Input::Member,
        _ => Input::Waiting,
    }
}

/// Computes `tops`, pending operations of one shape that fuse, with the region under them;
/// or, where some input of the region is not computed yet, computes nothing and returns those
/// inputs.
pub(super) fn run_region<A: Array>(tops: &[Deferred<A>]) -> Result<Vec<Deferred<A>>, Error> {
    let Some(first) = tops.first() else {
        return Ok(Vec::new());
    };
    let shape = first.node.shape.clone();
    // The members, found depth first; `order` lists them inputs first.
    let mut members: Vec<Deferred<A>> = Vec::new();
    let mut index: HashMap<Key<A>, usize> = HashMap::new();
    let mut waiting = Vec::new();
    let mut seen = HashSet::new();
    let mut order = Vec::new();
    let mut dfs = Vec::new();
    for top in tops {
        if let Entry::Vacant(e) = index.entry(key(top)) {
            e.insert(members.len());
            members.push(top.clone());
        }
    }
    let roots = members.len();
    // A root can be an input of another: it is entered where it is first reached.
    let mut entered = vec![false; roots];
    for root in 0..roots {
        if !std::mem::replace(&mut entered[root], true) {
            dfs.push((root, 0));
        }
        while let Some(&(m, next)) = dfs.last() {
            let input = match &*members[m].node.state.borrow() {
                State::Pending { inputs, .. } => inputs.get(next).cloned(),
                _ => None,
            };
            let Some(input) = input else {
                order.push(m);
                dfs.pop();
                continue;
            };
            if let Some(last) = dfs.last_mut() {
                last.1 += 1;
            }
            if let Some(&j) = index.get(&key(&input)) {
                if j < roots && !std::mem::replace(&mut entered[j], true) {
                    dfs.push((j, 0));
                }
                continue;
            }
            match classify(&input, &shape) {
                Input::Computed => {}
                Input::Member if members.len() < MAX_NODES => {
                    index.insert(key(&input), members.len());
                    dfs.push((members.len(), 0));
                    members.push(input);
                }
                Input::Member | Input::Waiting => {
                    if seen.insert(key(&input)) {
                        waiting.push(input);
                    }
                }
            }
        }
    }
    if !waiting.is_empty() {
        return Ok(waiting);
    }
    if members.len() == 1 {
        // Nothing to fuse with.
        members[0].run()?;
        return Ok(waiting);
    }

    let written = written(&members, &order, &index, roots);
    let mut chain = Chain::new(&shape);
    let mut slots = vec![0; members.len()];
    let mut leaves = HashMap::new();
    for &m in &order {
        let state = members[m].node.state.borrow();
        let State::Pending { inputs, op, .. } = &*state else {
            return Err(members[m].failed());
        };
        let mut operands = [0; MAX_ARITY];
        for (slot, x) in operands.iter_mut().zip(inputs) {
            *slot = match index.get(&key(x)) {
                Some(&j) => slots[j],
                None => match leaves.entry(key(x)) {
                    Entry::Occupied(e) => *e.get(),
                    Entry::Vacant(e) => *e.insert(leaf(&mut chain, x)?),
                },
            };
        }
        let operands = operands
            .get(..inputs.len())
            .ok_or_else(|| members[m].failed())?;
        slots[m] = chain.apply_kernel(members[m].node.name, Rc::clone(op).kernel(), operands)?;
    }
    let nodes: Vec<usize> = written.iter().map(|&m| slots[m]).collect();
    match chain.eval(&nodes) {
        Ok(values) => {
            for (&m, value) in written.iter().zip(values) {
                *members[m].node.state.borrow_mut() = State::Computed(A::lift(value));
            }
        }
        // A kernel refused its operands: the operations one by one, so that the error is the
        // failing operation's own.
        Err(_) => {
            for &m in &order {
                members[m].run()?;
            }
        }
    }
    Ok(waiting)
}

/// The members whose values are written out, in `order`: the roots, and each member held from
/// outside the region (a handle, an operation elsewhere, the caller's stack) that would cost
/// more than [`RECOMPUTE`] operations to compute again from what is written. One held more
/// cheaply stays pending, its pending inputs with it: computed again if it is ever asked for,
/// never written if it is not (a value a tape keeps for a rule the sweep does not run).
fn written<A: Array>(
    members: &[Deferred<A>],
    order: &[usize],
    index: &HashMap<Key<A>, usize>,
    roots: usize,
) -> Vec<usize> {
    // How many times each member is an input of another: what the region itself holds of it.
    let mut held_inside = vec![0; members.len()];
    let inputs_of = |m: usize| -> Vec<usize> {
        match &*members[m].node.state.borrow() {
            State::Pending { inputs, .. } => inputs
                .iter()
                .filter_map(|x| index.get(&key(x)).copied())
                .collect(),
            _ => Vec::new(),
        }
    };
    for &m in order {
        for j in inputs_of(m) {
            held_inside[j] += 1;
        }
    }
    // Operations to compute a member again from written values (a shared one counted per use:
    // an overestimate).
    let mut cost = vec![0; members.len()];
    let mut written = Vec::new();
    for &m in order {
        cost[m] = 1 + inputs_of(m).iter().map(|&j| cost[j]).sum::<usize>();
        // `members` holds one handle of its own.
        let held_outside = Rc::strong_count(&members[m].node) > held_inside[m] + 1;
        if m < roots || (held_outside && cost[m] > RECOMPUTE) {
            written.push(m);
            cost[m] = 0;
        }
    }
    written
}

/// A computed input as a leaf of the chain: a run of the chain's shape, or a one-element
/// value standing for every position.
fn leaf<A: Array>(chain: &mut Chain<A::Elem>, x: &Deferred<A>) -> Result<usize, Error> {
    let State::Computed(value) = &*x.node.state.borrow() else {
        return Err(x.failed());
    };
    let value = value.primal();
    if value.shape() == chain.shape() {
        chain.leaf(value)
    } else {
        match value.as_slice() {
            [v] => Ok(chain.scalar(*v)),
            _ => chain.leaf(value),
        }
    }
}
