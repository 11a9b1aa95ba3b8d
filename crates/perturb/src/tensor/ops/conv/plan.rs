//! The geometry of one convolution (`Plan`): the shapes checked, the output's extent, and what
//! each operation's GEMM multiplies.

use super::options::*;
use crate::error::Error;
use crate::tensor::dense::element_count;

// ---- Geometry -----------------------------------------------------------------------------

/// A convolution's geometry, resolved and lifted to two spatial axes (a 1-D one has a height
/// of 1): `x` the input's channels and spatial size, `y` the output's, and the index map
/// `x[.., i * stride + tap * dilation - pad]` for output position `i` and kernel tap `tap`,
/// zero outside the input.
#[derive(Clone, Copy, Debug)]
pub(super) struct Plan {
    pub(super) n: usize,
    pub(super) groups: usize,
    pub(super) cx: usize,
    pub(super) cy: usize,
    pub(super) x: [usize; 2],
    pub(super) y: [usize; 2],
    pub(super) k: [usize; 2],
    pub(super) stride: [usize; 2],
    pub(super) pad: [usize; 2],
    pub(super) dilation: [usize; 2],
}

/// The name of a convolution operation over `D` spatial axes.
pub(super) fn conv_name<const D: usize>(base: [&'static str; 2]) -> &'static str {
    if D == 1 {
        base[0]
    } else {
        base[1]
    }
}

pub(super) fn invalid(op: &'static str, reason: String) -> Error {
    Error::InvalidArgument { op, reason }
}

/// `a` as two axes, a 1-D value behind a leading `fill`.
pub(super) fn lift<const D: usize>(a: [usize; D], fill: usize) -> [usize; 2] {
    match D {
        1 => [fill, a[0]],
        _ => [a[0], a[1]],
    }
}

/// The spatial part of a `[N, C, spatial..]` shape (checked to have `D + 2` axes).
pub(super) fn spatial<const D: usize>(shape: &[usize]) -> [usize; D] {
    std::array::from_fn(|a| shape[2 + a])
}

/// The options' own checks, and the ranks of the two operands.
pub(super) fn check_common<const D: usize>(
    op: &'static str,
    o: &ConvOptions<D>,
    (a_name, a): (&str, &[usize]),
    (b_name, b): (&str, &[usize]),
) -> Result<(), Error> {
    if D == 0 || D > 2 {
        return Err(invalid(
            op,
            format!("convolutions over {D} spatial axes are not supported (1 or 2)"),
        ));
    }
    let rank = D + 2;
    if a.len() != rank || b.len() != rank {
        return Err(invalid(
            op,
            format!(
                "the {a_name} {a:?} and the {b_name} {b:?} must both have {rank} axes \
                 ({D} spatial)"
            ),
        ));
    }
    if o.stride.contains(&0) || o.dilation.contains(&0) || o.groups == 0 {
        return Err(invalid(
            op,
            format!(
                "stride {:?}, dilation {:?} and groups {} must be at least 1 \
                 ({a_name} {a:?}, {b_name} {b:?})",
                o.stride, o.dilation, o.groups
            ),
        ));
    }
    if o.padding == Padding::Same && o.stride.iter().any(|&s| s != 1) {
        return Err(invalid(
            op,
            format!(
                "\"same\" padding needs stride 1, got {:?} ({a_name} {a:?}, {b_name} {b:?})",
                o.stride
            ),
        ));
    }
    Ok(())
}

/// The extent `dilation * (k - 1) + 1` of each kernel axis, and an error naming `op` for an
/// empty kernel or input axis (as the transposed convolution, which is the gradient, refuses
/// them), or a kernel larger than the padded input (`size + lo + hi` per axis).
pub(super) fn extents<const D: usize>(
    op: &'static str,
    o: &ConvOptions<D>,
    kernel: [usize; D],
    size: [usize; D],
    pads: [(usize, usize); D],
    shapes: String,
) -> Result<[usize; D], Error> {
    let mut out = [0; D];
    for a in 0..D {
        if kernel[a] == 0 {
            return Err(invalid(op, format!("the kernel is empty ({shapes})")));
        }
        if size[a] == 0 {
            return Err(invalid(
                op,
                format!("the input is empty along spatial axis {a} ({shapes})"),
            ));
        }
        let extent = o.dilation[a]
            .checked_mul(kernel[a] - 1)
            .and_then(|e| e.checked_add(1))
            .ok_or_else(|| invalid(op, format!("the kernel's extent overflows ({shapes})")))?;
        let padded = size[a]
            .checked_add(pads[a].0)
            .and_then(|s| s.checked_add(pads[a].1))
            .ok_or_else(|| invalid(op, format!("the padding overflows ({shapes})")))?;
        if extent > padded {
            return Err(invalid(
                op,
                format!(
                    "along spatial axis {a} the kernel spans {extent} (dilation {}) but the \
                     padded input only {padded} ({shapes})",
                    o.dilation[a]
                ),
            ));
        }
        out[a] = extent;
    }
    Ok(out)
}

pub(super) fn make_plan<const D: usize>(
    o: &ConvOptions<D>,
    (n, cx, cy): (usize, usize, usize),
    x: [usize; D],
    y: [usize; D],
    kernel: [usize; D],
    pads: [(usize, usize); D],
) -> Plan {
    Plan {
        n,
        groups: o.groups,
        cx,
        cy,
        x: lift(x, 1),
        y: lift(y, 1),
        k: lift(kernel, 1),
        stride: lift(o.stride, 1),
        pad: lift(pads.map(|p| p.0), 0),
        dilation: lift(o.dilation, 1),
    }
}

/// The geometry of `conv(x, w)` (weight `[O, C / groups, kernel..]`) and the output's shape.
pub(super) fn conv_plan<const D: usize>(
    op: &'static str,
    o: &ConvOptions<D>,
    x: &[usize],
    w: &[usize],
) -> Result<(Plan, Vec<usize>), Error> {
    check_common(op, o, ("input", x), ("weight", w))?;
    let shapes = format!("input {x:?}, weight {w:?}");
    if o.output_padding.iter().any(|&p| p != 0) {
        return Err(invalid(
            op,
            format!(
                "output_padding {:?} applies to transposed convolutions only ({shapes})",
                o.output_padding
            ),
        ));
    }
    let (n, c, out_c, per_group) = (x[0], x[1], w[0], w[1]);
    if per_group.checked_mul(o.groups) != Some(c) {
        return Err(invalid(
            op,
            format!(
                "the input has {c} channels but the weight takes {per_group} per group \
                 x {} groups ({shapes})",
                o.groups
            ),
        ));
    }
    if out_c % o.groups != 0 {
        return Err(invalid(
            op,
            format!(
                "the weight's {out_c} output channels are not a multiple of the {} groups \
                 ({shapes})",
                o.groups
            ),
        ));
    }
    let kernel = spatial::<D>(w);
    let size = spatial::<D>(x);
    let pads = o.pads(kernel);
    let ext = extents(op, o, kernel, size, pads, shapes)?;
    let out: [usize; D] =
        std::array::from_fn(|a| (size[a] + pads[a].0 + pads[a].1 - ext[a]) / o.stride[a] + 1);
    let shape: Vec<usize> = [n, out_c].into_iter().chain(out).collect();
    element_count(op, &shape)?;
    Ok((make_plan(o, (n, c, out_c), size, out, kernel, pads), shape))
}

/// The geometry of `conv_transpose(y, w)` (weight `[C_y, C_x / groups, kernel..]`, the weight
/// of the convolution it transposes) and the output's shape.
pub(super) fn transpose_plan<const D: usize>(
    op: &'static str,
    o: &ConvOptions<D>,
    y: &[usize],
    w: &[usize],
) -> Result<(Plan, Vec<usize>), Error> {
    check_common(op, o, ("input", y), ("weight", w))?;
    let shapes = format!("input {y:?}, weight {w:?}");
    let (n, cy, w_in, per_group) = (y[0], y[1], w[0], w[1]);
    if cy != w_in {
        return Err(invalid(
            op,
            format!("the input has {cy} channels but the weight's first axis {w_in} ({shapes})"),
        ));
    }
    if cy % o.groups != 0 {
        return Err(invalid(
            op,
            format!(
                "the input's {cy} channels are not a multiple of the {} groups ({shapes})",
                o.groups
            ),
        ));
    }
    let kernel = spatial::<D>(w);
    let size = spatial::<D>(y);
    let pads = o.pads(kernel);
    let mut out = [0; D];
    for a in 0..D {
        if kernel[a] == 0 || size[a] == 0 {
            return Err(invalid(
                op,
                format!("empty kernel or input along spatial axis {a} ({shapes})"),
            ));
        }
        // (size - 1) stride + dilation (k - 1) + 1 + output_padding - lo - hi
        let full = (size[a] - 1)
            .checked_mul(o.stride[a])
            .and_then(|v| v.checked_add(o.dilation[a].checked_mul(kernel[a] - 1)?))
            .and_then(|v| v.checked_add(1)?.checked_add(o.output_padding[a]))
            .ok_or_else(|| invalid(op, format!("the output size overflows ({shapes})")))?;
        let cut = pads[a].0.saturating_add(pads[a].1);
        if cut >= full {
            return Err(invalid(
                op,
                format!(
                    "along spatial axis {a} the padding {:?} removes the whole output of \
                     {full} ({shapes})",
                    pads[a]
                ),
            ));
        }
        out[a] = full - cut;
    }
    let cx = per_group
        .checked_mul(o.groups)
        .ok_or_else(|| invalid(op, format!("the channel count overflows ({shapes})")))?;
    let shape: Vec<usize> = [n, cx].into_iter().chain(out).collect();
    element_count(op, &shape)?;
    Ok((make_plan(o, (n, cx, cy), out, size, kernel, pads), shape))
}

/// The geometry of the weight gradient `dB/dw` of `conv(x, w)` at cotangent `g`, for a kernel
/// of `kernel` taps, and its shape `[C_g, C_x / groups, kernel..]`. `g` may be shorter than
/// the convolution's output (the rows past its end count as zeros).
pub(super) fn weight_grad_plan<const D: usize>(
    op: &'static str,
    o: &ConvOptions<D>,
    kernel: [usize; D],
    x: &[usize],
    g: &[usize],
) -> Result<(Plan, Vec<usize>), Error> {
    check_common(op, o, ("input", x), ("cotangent", g))?;
    let shapes = format!("input {x:?}, cotangent {g:?}, kernel {kernel:?}");
    let (n, cx, n_g, cy) = (x[0], x[1], g[0], g[1]);
    if n != n_g {
        return Err(invalid(
            op,
            format!("the batch sizes {n} and {n_g} differ ({shapes})"),
        ));
    }
    if cx % o.groups != 0 || cy % o.groups != 0 {
        return Err(invalid(
            op,
            format!(
                "the channel counts {cx} and {cy} must be multiples of the {} groups ({shapes})",
                o.groups
            ),
        ));
    }
    let size = spatial::<D>(x);
    let out = spatial::<D>(g);
    let pads = o.pads(kernel);
    let ext = extents(op, o, kernel, size, pads, shapes.clone())?;
    for a in 0..D {
        let longest = (size[a] + pads[a].0 + pads[a].1 - ext[a]) / o.stride[a] + 1;
        if out[a] > longest {
            return Err(invalid(
                op,
                format!(
                    "along spatial axis {a} the cotangent has {} positions, the convolution \
                     only {longest} ({shapes})",
                    out[a]
                ),
            ));
        }
    }
    let shape: Vec<usize> = [cy, cx / o.groups].into_iter().chain(kernel).collect();
    element_count(op, &shape)?;
    Ok((make_plan(o, (n, cx, cy), size, out, kernel, pads), shape))
}
