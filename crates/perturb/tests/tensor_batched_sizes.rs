//! A tangent or cotangent stack must have its primal's or output's number of members. A zero
//! one is skipped as zero by the transforms, so no operation ever combined it with the stack
//! it belongs to: a zero cotangent of 5 members against 3 gave a single zero gradient, where a
//! nonzero one of the same size was an error (found by the third hostile hunt).

use perturb::tensor::{jvp, jvp_n, vjp, Array, Batched, Tensor, TensorTape};

fn loss<A: Array>(x: &A) -> Result<A, perturb::Error> {
    Ok(x.square().sum_all())
}

fn members() -> Batched<Tensor<f64>> {
    Batched::stack(Tensor::randn(&[3, 4], 0.0, 1.0, 1))
}

#[test]
fn a_zero_cotangent_stack_of_another_size_is_an_error_like_a_nonzero_one() {
    let x = members();
    for ct in [Tensor::<f64>::zeros(&[5]), Tensor::ones(&[5])] {
        let err = vjp(|x| loss(x), &x, &Batched::stack(ct))
            .unwrap_err()
            .to_string();
        assert!(err.contains('5') && err.contains('3'), "{err}");
    }
    let tape = TensorTape::<Batched<Tensor<f64>>>::over();
    let xv = tape.var(x.clone());
    let y = xv.square().sum_all();
    let err = tape
        .vjp(&y, &Batched::stack(Tensor::zeros(&[5])), &[&xv])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("TensorTape::vjp") && err.contains('5'),
        "{err}"
    );
    // Of the right size, or a single cotangent for every member: accepted.
    let (_, g) = vjp(|x| loss(x), &x, &Batched::stack(Tensor::ones(&[3]))).unwrap();
    let want = x.clone().into_stack().unwrap().scale(2.0);
    assert_eq!(g.into_stack().unwrap().to_vec(), want.to_vec());
    let (_, g) = vjp(|x| loss(x), &x, &Batched::single(Tensor::scalar(0.0))).unwrap();
    assert_eq!(g.into_stack_of(3).unwrap().to_vec(), vec![0.0; 12]);
}

#[test]
fn a_zero_tangent_stack_of_another_size_is_an_error() {
    let x = members();
    let t = Batched::stack(Tensor::<f64>::zeros(&[5, 4]));
    let err = jvp(loss, &x, &t).unwrap_err().to_string();
    assert!(err.contains("jvp") && err.contains('5'), "{err}");
    let err = jvp_n(
        |x| Ok(x[0].square().sum_all()),
        std::slice::from_ref(&x),
        &[t],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("jvp_n") && err.contains('5'), "{err}");
    let ok = Batched::stack(Tensor::<f64>::zeros(&[3, 4]));
    let (_, d) = jvp(loss, &x, &ok).unwrap();
    assert_eq!(d.into_stack_of(3).unwrap().to_vec(), vec![0.0; 3]);
}
