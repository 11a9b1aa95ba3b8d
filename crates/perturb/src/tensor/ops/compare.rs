//! Comparisons (masks of 0 and 1, not differentiable), selection by a mask, clamping,
//! element-wise maximum and minimum.
