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
//! A requested sum of all elements of a region's operation ([`run_sum`]) is added up block by
//! block in the same pass, and the operation it sums is then written out only by that rule.

use std::rc::Rc;

use super::{Deferred, State};
use crate::error::Error;
use crate::tensor::fusion::{self, Chain, MAX_ARITY};
use crate::tensor::{Array, Tensor};

/// Element-wise operations on plain tensors of this size or more run on rayon's pool
/// ([`kernels::Cost`]'s threshold for cheap ones); a chain runs on one thread, so these sizes
/// run unfused. (Transcendental operations go to the pool from 2^14 elements: a chain of them
/// between 2^14 and 2^18 runs on one thread where unfused they would use all; on the project's
/// 2-core machine the two took the same time at 10^5 elements, BENCHMARKS.md.)
///
/// [`kernels::Cost`]: crate::tensor::kernels::Cost
const MAX_LEN: usize = 1 << 18;

/// The most operations a member held outside the region may take to compute again, for it
/// not to be written out.
const RECOMPUTE: usize = 2;

/// The most operations in one chain: its scratch, one block of each, stays in L2 (256 KiB of
/// `f64`); a larger region is cut, its far part computed first as a region of its own.
const MAX_NODES: usize = 64;

/// Whether values of `shape` are computed fused ([`fusion::min_len`] to [`MAX_LEN`]).
pub(super) fn fits(shape: &[usize]) -> bool {
    (fusion::min_len()..MAX_LEN).contains(&shape.iter().product::<usize>())
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

/// Where an operand of a member comes from.
#[derive(Clone, Copy)]
enum Source {
    /// Another member.
    Member(usize),
    /// A computed value, a leaf of the chain.
    Leaf(usize),
}

/// Computes `tops`, pending operations of one shape that fuse, with the region under them;
/// or, where some input of the region is not computed yet, computes nothing and returns those
/// inputs.
///
/// A region has at most [`MAX_NODES`] members and a few leaves: they are looked up by linear
/// search, which at these sizes costs less than hashing.
pub(super) fn run_region<A: Array>(tops: &[Deferred<A>]) -> Result<Vec<Deferred<A>>, Error> {
    region(tops, None)
}

/// Computes `sum`, a pending sum of all elements of one pending operation that fuses, by
/// the region under that operation with the sum added up block by block in the same pass
/// ([`kernels::sum`]'s running sums carried across blocks: the same bits as unfused). The
/// operation itself is written out only where something else holds it, as in
/// [`run_region`]. Returns what the region waits for, as `run_region` does.
///
/// [`kernels::sum`]: crate::tensor::kernels
pub(super) fn run_sum<A: Array>(sum: &Deferred<A>) -> Result<Vec<Deferred<A>>, Error> {
    let input = match &*sum.node.state.borrow() {
        State::Pending { inputs, .. } if inputs.len() == 1 => inputs[0].clone(),
        _ => return Err(sum.failed()),
    };
    region(&[input], Some(sum))
}

/// [`run_region`], and with `summed` the sum of `tops[0]` (the only top) as well.
fn region<A: Array>(
    tops: &[Deferred<A>],
    summed: Option<&Deferred<A>>,
) -> Result<Vec<Deferred<A>>, Error> {
    let Some(first) = tops.first() else {
        return Ok(Vec::new());
    };
    let shape = first.node.shape.clone();
    let mut members: Vec<Deferred<A>> = Vec::new();
    for top in tops {
        if !members.iter().any(|m| m.same(top)) {
            members.push(top.clone());
        }
    }
    let roots = members.len();
    // Each member's operands, and how many times it is an operand of another member: what the
    // region itself holds of it.
    let mut sources = vec![[Source::Leaf(0); MAX_ARITY]; roots];
    let mut held_inside = vec![0; roots];
    let mut leaves: Vec<Deferred<A>> = Vec::new();
    let mut waiting: Vec<Deferred<A>> = Vec::new();
    // Depth first; `order` lists the members inputs first. A root can be an input of
    // another: it is entered where it is first reached.
    let mut order = Vec::new();
    let mut entered = vec![false; roots];
    let mut dfs = Vec::new();
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
            let source = if let Some(j) = members.iter().position(|x| x.same(&input)) {
                if j < roots && !std::mem::replace(&mut entered[j], true) {
                    dfs.push((j, 0));
                }
                Source::Member(j)
            } else {
                match classify(&input, &shape) {
                    Input::Computed => match leaves.iter().position(|x| x.same(&input)) {
                        Some(k) => Source::Leaf(k),
                        None => {
                            leaves.push(input);
                            Source::Leaf(leaves.len() - 1)
                        }
                    },
                    Input::Member if members.len() < MAX_NODES => {
                        dfs.push((members.len(), 0));
                        members.push(input);
                        sources.push([Source::Leaf(0); MAX_ARITY]);
                        held_inside.push(0);
                        Source::Member(members.len() - 1)
                    }
                    Input::Member | Input::Waiting => {
                        if !waiting.iter().any(|x| x.same(&input)) {
                            waiting.push(input);
                        }
                        continue;
                    }
                }
            };
            if let Source::Member(j) = source {
                held_inside[j] += 1;
            }
            // A member fuses, so it has at most `MAX_ARITY` operands.
            let slot = sources[m]
                .get_mut(next)
                .ok_or_else(|| members[m].failed())?;
            *slot = source;
        }
    }
    if !waiting.is_empty() {
        return Ok(waiting);
    }
    if members.len() == 1 && summed.is_none() {
        // Nothing to fuse with.
        members[0].run()?;
        return Ok(waiting);
    }

    let mut chain = Chain::new(&shape);
    let leaf_slots = leaves
        .iter()
        .map(|x| leaf(&mut chain, x))
        .collect::<Result<Vec<_>, Error>>()?;
    let mut slots = vec![0; members.len()];
    // Written out: the roots, and each member held from outside the region (a handle, an
    // operation elsewhere, the caller's stack) that would cost more than `RECOMPUTE`
    // operations to compute again from written values. One held more cheaply stays pending,
    // its pending inputs with it: computed again if it is ever asked for, never written if it
    // is not (a value a tape keeps for a rule the sweep does not run).
    let mut written = Vec::new();
    // Operations to compute each member again from written values (a shared one counted per
    // use: an overestimate).
    let mut cost = vec![0; members.len()];
    for &m in &order {
        let state = members[m].node.state.borrow();
        let State::Pending { inputs, op, .. } = &*state else {
            return Err(members[m].failed());
        };
        let mut operands = [0; MAX_ARITY];
        cost[m] = 1;
        for (slot, source) in operands.iter_mut().zip(&sources[m][..inputs.len()]) {
            *slot = match *source {
                Source::Member(j) => {
                    cost[m] += cost[j];
                    slots[j]
                }
                Source::Leaf(k) => leaf_slots[k],
            };
        }
        let kernel = Rc::clone(op).kernel();
        slots[m] = chain.apply_kernel(members[m].node.name, kernel, &operands[..inputs.len()])?;
        // `members` holds one handle of its own, and a summed top one more is the sum's.
        let summed_here = m == 0 && summed.is_some();
        let held_outside =
            Rc::strong_count(&members[m].node) > held_inside[m] + 1 + usize::from(summed_here);
        if (m < roots && !summed_here) || (held_outside && cost[m] > RECOMPUTE) {
            written.push(m);
            cost[m] = 0;
        }
    }
    let nodes: Vec<usize> = written.iter().map(|&m| slots[m]).collect();
    let sums = if summed.is_some() { &slots[..1] } else { &[] };
    match chain.eval_summing("fusion::Chain::eval", &nodes, sums) {
        Ok((values, totals)) => {
            for (&m, value) in written.iter().zip(values) {
                *members[m].node.state.borrow_mut() = State::Computed(A::lift(value));
            }
            if let (Some(sum), [total]) = (summed, totals.as_slice()) {
                let value = Tensor::from_parts(vec![*total], sum.node.shape.clone());
                *sum.node.state.borrow_mut() = State::Computed(A::lift(value));
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
