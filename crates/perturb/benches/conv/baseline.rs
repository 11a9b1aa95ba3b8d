//! The conv benchmark's baseline, shared by `benches/conv.rs` and `examples/conv_cpu.rs`: only
//! the products the convolution performs, through the same `T::gemm`, on buffers allocated
//! once, per image: `y = W cols` (O x K x P), `cols = W^T g` (K x O x P) and `dW += g cols^T`
//! (O x P x K), the images split over rayon's pool as the convolution splits them.

use perturb::tensor::Element;
use rayon::prelude::*;

/// The baseline's buffers: the unrolled image, and per run of images its output, the product
/// `W^T g` and its weight gradient.
pub struct GemmBaseline {
    shape: [usize; 4],
    cols: Vec<f32>,
    outs: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)>,
}

impl GemmBaseline {
    /// Buffers for `n` images, `o` filters, `k` taps and `p` output positions.
    pub fn new(n: usize, o: usize, k: usize, p: usize) -> Self {
        let runs = rayon::current_num_threads().clamp(1, n);
        GemmBaseline {
            shape: [n, o, k, p],
            cols: vec![0.5; k * p],
            outs: (0..runs)
                .map(|_| (vec![0.0; o * p], vec![0.0; k * p], vec![0.0; o * k]))
                .collect(),
        }
    }

    /// The three products for every image of `g` (`n x o x p`), with the weights `w` (`o x k`).
    pub fn run(&mut self, w: &[f32], g: &[f32]) {
        let [n, o, k, p] = self.shape;
        let per = n.div_ceil(self.outs.len());
        let cols = &self.cols;
        self.outs
            .par_iter_mut()
            .enumerate()
            .for_each(|(r, (y, back, dw))| {
                for i in r * per..((r + 1) * per).min(n) {
                    let gi = &g[i * o * p..(i + 1) * o * p];
                    f32::gemm(o, k, p, w, (k, 1), cols, (p, 1), 0.0, y, p);
                    f32::gemm(k, o, p, w, (1, k), gi, (p, 1), 0.0, back, p);
                    f32::gemm(o, p, k, gi, (p, 1), cols, (1, p), 1.0, dw, k);
                }
            });
    }
}
