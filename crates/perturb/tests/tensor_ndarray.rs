//! Conversions from and to `ndarray` (newcomer report, item 1): every kind of array, whatever
//! its memory layout (a slice starting inside its buffer, a transposed array, steps, negative
//! strides, views), becomes a tensor with the array's elements in logical row-major order.
//! Each case is checked element by element against the array's own indexing.
#![cfg(feature = "ndarray")]

use ndarray::{s, Array1, Array2, ArrayD, ArrayView2, Axis, Dimension, IxDyn};
use perturb::tensor::{Array, Tensor};

/// Asserts that `t` has `a`'s shape and, at every multi-index, `a`'s element.
#[track_caller]
fn assert_same<S: ndarray::Data<Elem = f64>, D: Dimension>(
    t: &Tensor<f64>,
    a: &ndarray::ArrayBase<S, D>,
) {
    assert_eq!(t.shape(), a.shape());
    for (index, &expected) in a.view().into_dyn().indexed_iter() {
        assert_eq!(
            t.get(index.slice()),
            Some(expected),
            "at {:?}",
            index.slice()
        );
    }
    assert_eq!(t.len(), a.len());
}

fn base() -> Array2<f64> {
    Array2::from_shape_fn((4, 5), |(i, j)| (10 * i + j) as f64)
}

#[test]
fn an_owned_slice_that_starts_inside_its_buffer_keeps_its_elements() {
    // Before: Tensor::from(tail) gave [0, 1, 2] (the buffer's start, the offset ignored).
    let all = ArrayD::from_shape_vec(IxDyn(&[6]), (0..6).map(f64::from).collect()).unwrap();
    let tail = all.slice_move(s![3..]);
    let t = Tensor::from(tail.clone());
    assert_eq!(t.to_vec(), vec![3.0, 4.0, 5.0]);
    assert_same(&t, &tail);
    // Rows 1..3 of a matrix: contiguous, in standard layout, at an offset.
    let rows = base().slice_move(s![1..3, ..]);
    assert!(rows.is_standard_layout());
    assert_same(&Tensor::from(rows.clone()), &rows);
    // A block in the middle: neither contiguous nor at the start.
    let block = base().slice_move(s![1..3, 2..4]);
    assert_same(&Tensor::from(block.clone()), &block);
}

#[test]
fn transposed_stepped_and_reversed_arrays_are_read_in_logical_order() {
    let transposed = base().reversed_axes();
    assert_same(&Tensor::from(transposed.clone()), &transposed);
    let stepped = base().slice_move(s![..;2, 1..;3]);
    assert_same(&Tensor::from(stepped.clone()), &stepped);
    // Negative strides: reversed rows, reversed columns, both.
    for reversed in [
        base().slice_move(s![..;-1, ..]),
        base().slice_move(s![.., ..;-1]),
        base().slice_move(s![..;-1, ..;-2]),
    ] {
        assert_same(&Tensor::from(reversed.clone()), &reversed);
    }
    let mut inverted = base();
    inverted.invert_axis(Axis(1));
    assert_same(&Tensor::from(inverted.clone()), &inverted);
    // A permuted 3-D array.
    let cube = ArrayD::from_shape_fn(IxDyn(&[2, 3, 4]), |i| {
        (i[0] * 100 + i[1] * 10 + i[2]) as f64
    });
    let permuted = cube.permuted_axes(IxDyn(&[2, 0, 1]));
    assert_same(&Tensor::from(permuted.clone()), &permuted);
}

#[test]
fn views_and_references_convert_too() {
    let a = base();
    let view: ArrayView2<f64> = a.slice(s![1.., ..;-2]);
    assert_same(&Tensor::from(view), &view);
    assert_same(&Tensor::from(&view), &view);
    assert_same(&Tensor::from(a.t()), &a.t());
    assert_same(&Tensor::from(&a), &a);
    let dynamic = a.clone().into_dyn();
    assert_same(&Tensor::from(&dynamic), &dynamic);
    let shared = a.to_shared();
    assert_same(&Tensor::from(shared.clone()), &shared);
    let column = a.column(3);
    assert_same(&Tensor::from(column), &column);
    let vector = Array1::from(vec![1.5, -2.0, 3.25]);
    assert_same(&Tensor::from(vector.clone()), &vector);
    // A 0-dimensional array and an empty one.
    let scalar = ndarray::arr0(7.0);
    assert_eq!(Tensor::from(scalar).item(), Some(7.0));
    let empty = Array2::<f64>::zeros((0, 3));
    assert_eq!(Tensor::from(empty).shape(), &[0, 3]);
}

#[test]
fn tensors_convert_back_to_arrays() {
    let t = Tensor::from_vec((0..6).map(f64::from).collect(), &[2, 3]).unwrap();
    let m = Array2::try_from(&t).unwrap();
    assert_same(&t, &m);
    assert_same(&t, &ArrayD::from(&t));
    assert_same(&t, &ArrayD::from(t.clone()));
    // A narrowed tensor (a view of a shared buffer at an offset) converts to its own elements.
    let row = Tensor::from_vec((0..6).map(f64::from).collect(), &[3, 2])
        .unwrap()
        .narrow(0, 2, 1);
    assert_eq!(
        ArrayD::from(&row).into_raw_vec_and_offset().0,
        vec![4.0, 5.0]
    );
    let v = Array1::try_from(&Tensor::vector(&[1.0, 2.0])).unwrap();
    assert_eq!(v.to_vec(), vec![1.0, 2.0]);
    let err = Array2::try_from(&Tensor::<f64>::zeros(&[2, 2, 2])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Array2::try_from: needs a tensor with 2 axes, got shape [2, 2, 2]"
    );
    assert!(Array1::try_from(&t).is_err());
    // Round trip through a transposed view.
    let back = Tensor::from(m.t());
    assert_eq!(back.to_vec(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
}
