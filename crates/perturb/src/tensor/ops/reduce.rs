//! Reductions over one or several axes (sum, mean, max, min, logsumexp) with `keepdims`, and
//! softmax / log-softmax along an axis.
