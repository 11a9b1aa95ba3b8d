//! A compact layered layout of a computational graph, drawn left to right (the Sugiyama
//! method): the inputs in the first column, each other node one column right of its latest
//! parent (then pulled right up to its first use, which shortens long edges); every edge's
//! label is a box of its own in the gap between two columns, and an edge that skips columns
//! runs through them as a thin bend, so labels, bends and boxes never overlap. The order within
//! each column is chosen by barycentre sweeps to reduce crossings, and the heights by a least
//! squares fit that pulls every box towards its neighbours (which keeps edges short and the
//! picture free of large blank areas).
//!
//! The layout is plain geometry: it knows nothing of what the boxes say, so the pictures of
//! `perturb explain --graph` and a web page can place the same graph the same way.

/// The width and height of a box.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Size {
    pub width: f64,
    pub height: f64,
}

/// A placed box: its top-left corner and size (y grows downwards, as in SVG).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

impl Rect {
    pub fn right(&self) -> f64 {
        self.x + self.width
    }

    pub fn bottom(&self) -> f64 {
        self.y + self.height
    }

    pub fn middle(&self) -> f64 {
        self.y + self.height / 2.0
    }

    /// Whether the two boxes share some area (touching edges do not count).
    #[cfg(test)]
    pub fn overlaps(&self, other: &Rect) -> bool {
        self.x < other.right()
            && other.x < self.right()
            && self.y < other.bottom()
            && other.y < self.bottom()
    }
}

/// An edge from node `from` to node `to` (`from < to`: nodes come in a topological order, as a
/// trace records them) with a label box of size `label`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    pub label: Size,
}

/// The gaps of a layout.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spacing {
    /// Between two neighbouring columns (of nodes or of edge labels).
    pub column: f64,
    /// Between two boxes of a column (half of it next to a bend).
    pub row: f64,
    /// Around the whole picture.
    pub margin: f64,
}

/// Where an edge runs: `points` from the right side of its first node to the left side of its
/// last, alternately a curve (between columns) and a straight run (through a column: under its
/// label box, or along a bend): segments 0, 2, 4, ... are curves, 1, 3, ... straight.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub points: Vec<(f64, f64)>,
    pub label: Rect,
}

/// A placed graph: the picture's size, each node's column and box, each edge's route.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub width: f64,
    pub height: f64,
    /// Each node's column: 0 for the inputs (and any other node without parents).
    pub columns: Vec<usize>,
    pub boxes: Vec<Rect>,
    pub routes: Vec<Route>,
}

/// Barycentre sweeps over the columns for the order (the best order seen is kept).
const ORDER_SWEEPS: usize = 24;
/// Sweeps of the least squares placement of heights.
const PLACE_SWEEPS: usize = 16;

/// One thing placed in a layer: a node, an edge's label, or a bend of an edge.
struct Item {
    layer: usize,
    size: Size,
    bend: bool,
}

/// Lays out `nodes` (their box sizes) joined by `edges`.
pub fn layout(nodes: &[Size], edges: &[Edge], spacing: Spacing) -> Layout {
    let columns = columns(nodes.len(), edges);
    // Layer 2c holds column c's nodes; layer 2c + 1 the labels of the edges leaving them and
    // the bends of longer edges passing by.
    let mut items: Vec<Item> = nodes
        .iter()
        .zip(&columns)
        .map(|(&size, &c)| Item {
            layer: 2 * c,
            size,
            bend: false,
        })
        .collect();
    let mut chains = Vec::with_capacity(edges.len());
    for edge in edges {
        let (start, end) = (2 * columns[edge.from], 2 * columns[edge.to]);
        let mut chain = vec![edge.from];
        for layer in start + 1..end {
            chain.push(items.len());
            items.push(Item {
                layer,
                size: if layer == start + 1 {
                    edge.label
                } else {
                    Size::default()
                },
                bend: layer != start + 1,
            });
        }
        chain.push(edge.to);
        chains.push(chain);
    }
    let (mut up, mut down) = (vec![Vec::new(); items.len()], vec![Vec::new(); items.len()]);
    for chain in &chains {
        for pair in chain.windows(2) {
            down[pair[0]].push(pair[1]);
            up[pair[1]].push(pair[0]);
        }
    }
    let layer_count = items.iter().map(|it| it.layer + 1).max().unwrap_or(0);
    let mut layers = vec![Vec::new(); layer_count];
    for (i, item) in items.iter().enumerate() {
        layers[item.layer].push(i);
    }
    order(&mut layers, &up, &down, items.len());
    let mut centres = place(&layers, &items, &up, &down, spacing);
    straighten(&layers, &items, &chains, spacing, &mut centres);

    // Columns are as wide as their widest box; boxes are centred in them.
    let mut lefts = Vec::with_capacity(layer_count);
    let mut x = spacing.margin;
    for layer in &layers {
        lefts.push(x);
        let width = layer
            .iter()
            .map(|&i| items[i].size.width)
            .fold(0.0, f64::max);
        x += width + spacing.column;
    }
    let width = x - spacing.column + spacing.margin;
    let widths: Vec<f64> = layers
        .iter()
        .map(|l| l.iter().map(|&i| items[i].size.width).fold(0.0, f64::max))
        .collect();
    let top = items
        .iter()
        .zip(&centres)
        .map(|(it, c)| c - it.size.height / 2.0)
        .fold(f64::INFINITY, f64::min);
    let shift = spacing.margin - if top.is_finite() { top } else { 0.0 };
    let rects: Vec<Rect> = items
        .iter()
        .zip(&centres)
        .map(|(it, &c)| {
            let (x, width) = if it.bend {
                (lefts[it.layer], widths[it.layer])
            } else {
                (
                    lefts[it.layer] + (widths[it.layer] - it.size.width) / 2.0,
                    it.size.width,
                )
            };
            Rect {
                x,
                y: c + shift - it.size.height / 2.0,
                width,
                height: it.size.height,
            }
        })
        .collect();
    let height = rects.iter().map(Rect::bottom).fold(0.0, f64::max) + spacing.margin;
    let (leave, enter) = ports(nodes.len(), &chains, &rects);
    let routes = chains
        .iter()
        .zip(leave.iter().zip(&enter))
        .map(|(chain, (&leave, &enter))| {
            let mut points = vec![(rects[chain[0]].right(), leave)];
            for &i in &chain[1..chain.len() - 1] {
                points.push((rects[i].x, rects[i].middle()));
                points.push((rects[i].right(), rects[i].middle()));
            }
            points.push((rects[chain[chain.len() - 1]].x, enter));
            Route {
                points,
                label: rects[chain[1]],
            }
        })
        .collect();
    Layout {
        width,
        height,
        columns,
        boxes: rects[..nodes.len()].to_vec(),
        routes,
    }
}

/// The most room between two edges leaving (or entering) the same side of a box.
const PORT_STEP: f64 = 10.0;

/// The height at which each edge leaves its first node and enters its last: a node's edges
/// are spread over its side in the order of the heights of their other ends, so that they
/// neither cross there nor meet in one point.
fn ports(nodes: usize, chains: &[Vec<usize>], rects: &[Rect]) -> (Vec<f64>, Vec<f64>) {
    let mut leaving = vec![Vec::new(); nodes];
    let mut entering = vec![Vec::new(); nodes];
    for (e, chain) in chains.iter().enumerate() {
        let n = chain.len();
        leaving[chain[0]].push((rects[chain[1]].middle(), e));
        entering[chain[n - 1]].push((rects[chain[n - 2]].middle(), e));
    }
    let spread = |sides: &mut [Vec<(f64, usize)>], at: &mut [f64]| {
        for (node, side) in sides.iter_mut().enumerate() {
            side.sort_by(|a, b| a.0.total_cmp(&b.0));
            let r = rects[node];
            let step = PORT_STEP.min(r.height / (side.len() + 1) as f64);
            let first = r.middle() - step * (side.len() as f64 - 1.0) / 2.0;
            for (k, &(_, e)) in side.iter().enumerate() {
                at[e] = first + step * k as f64;
            }
        }
    };
    let (mut leave, mut enter) = (vec![0.0; chains.len()], vec![0.0; chains.len()]);
    spread(&mut leaving, &mut leave);
    spread(&mut entering, &mut enter);
    (leave, enter)
}

/// Each node's column: one right of its latest parent, then, for a node that has parents and
/// is used, as far right as its first use allows.
fn columns(n: usize, edges: &[Edge]) -> Vec<usize> {
    let mut parents = vec![Vec::new(); n];
    let mut children = vec![Vec::new(); n];
    for e in edges {
        debug_assert!(e.from < e.to, "edges go from earlier to later nodes");
        parents[e.to].push(e.from);
        children[e.from].push(e.to);
    }
    let mut column = vec![0; n];
    for i in 0..n {
        column[i] = parents[i].iter().map(|&p| column[p] + 1).max().unwrap_or(0);
    }
    for i in (0..n).rev() {
        if let Some(first_use) = children[i].iter().map(|&c| column[c]).min() {
            if !parents[i].is_empty() {
                column[i] = column[i].max(first_use - 1);
            }
        }
    }
    column
}

/// Orders every layer by barycentre sweeps, keeping the order with the fewest crossings.
fn order(layers: &mut [Vec<usize>], up: &[Vec<usize>], down: &[Vec<usize>], items: usize) {
    let mut pos = vec![0; items];
    let index = |layers: &[Vec<usize>], pos: &mut [usize]| {
        for layer in layers {
            for (k, &i) in layer.iter().enumerate() {
                pos[i] = k;
            }
        }
    };
    index(layers, &mut pos);
    let mut best = (crossings(layers, down, &pos), layers.to_vec());
    for sweep in 0..ORDER_SWEEPS {
        if best.0 == 0 {
            break;
        }
        let (range, neighbours): (Vec<usize>, _) = if sweep % 2 == 0 {
            ((1..layers.len()).collect(), up)
        } else {
            ((0..layers.len().saturating_sub(1)).rev().collect(), down)
        };
        for l in range {
            let mut keyed: Vec<(f64, usize)> = layers[l]
                .iter()
                .map(|&i| {
                    let n = &neighbours[i];
                    let key = if n.is_empty() {
                        pos[i] as f64
                    } else {
                        n.iter().map(|&j| pos[j] as f64).sum::<f64>() / n.len() as f64
                    };
                    (key, i)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
            layers[l] = keyed.into_iter().map(|(_, i)| i).collect();
            for (k, &i) in layers[l].iter().enumerate() {
                pos[i] = k;
            }
        }
        let count = crossings(layers, down, &pos);
        if count < best.0 {
            best = (count, layers.to_vec());
        }
    }
    layers.clone_from_slice(&best.1);
}

/// The number of pairs of crossing segments between neighbouring layers: inversions counted
/// with a Fenwick tree, `O(E log E)`.
fn crossings(layers: &[Vec<usize>], down: &[Vec<usize>], pos: &[usize]) -> usize {
    let mut total = 0;
    for pair in layers.windows(2) {
        let mut ends: Vec<(usize, usize)> = pair[0]
            .iter()
            .flat_map(|&u| down[u].iter().map(move |&v| (pos[u], pos[v])))
            .collect();
        ends.sort_unstable();
        let mut tree = vec![0usize; pair[1].len() + 1];
        for (seen, &(_, v)) in ends.iter().enumerate() {
            let (mut at_most, mut i) = (0, v + 1);
            while i > 0 {
                at_most += tree[i];
                i &= i - 1;
            }
            total += seen - at_most;
            let mut i = v + 1;
            while i < tree.len() {
                tree[i] += 1;
                i += i & i.wrapping_neg();
            }
        }
    }
    total
}

/// The vertical centre of every item: each layer stacked in its order, then sweeps that move
/// every item towards the mean height of its neighbours in the layer before (or after, or
/// both in the last sweeps), as closely as the order and the gaps allow.
fn place(
    layers: &[Vec<usize>],
    items: &[Item],
    up: &[Vec<usize>],
    down: &[Vec<usize>],
    spacing: Spacing,
) -> Vec<f64> {
    let mut centre = vec![0.0; items.len()];
    for layer in layers {
        let desired = vec![0.0; layer.len()];
        fit(layer, &desired, items, spacing, &mut centre);
    }
    let mean = |neighbours: &[usize], centre: &[f64]| {
        (!neighbours.is_empty())
            .then(|| neighbours.iter().map(|&j| centre[j]).sum::<f64>() / neighbours.len() as f64)
    };
    for sweep in 0..PLACE_SWEEPS {
        let both = sweep + 4 >= PLACE_SWEEPS;
        let downward = sweep % 2 == 0;
        let range: Vec<usize> = if downward {
            (1..layers.len()).collect()
        } else {
            (0..layers.len().saturating_sub(1)).rev().collect()
        };
        for l in range {
            let desired: Vec<f64> = layers[l]
                .iter()
                .map(|&i| {
                    let wanted = if both {
                        let all: Vec<usize> = up[i].iter().chain(&down[i]).copied().collect();
                        mean(&all, &centre)
                    } else if downward {
                        mean(&up[i], &centre)
                    } else {
                        mean(&down[i], &centre)
                    };
                    wanted.unwrap_or(centre[i])
                })
                .collect();
            fit(&layers[l], &desired, items, spacing, &mut centre);
        }
    }
    centre
}

/// The least distance between the centres of two neighbouring items of a layer.
fn distance(a: &Item, b: &Item, spacing: Spacing) -> f64 {
    let gap = if a.bend || b.bend {
        spacing.row / 2.0
    } else {
        spacing.row
    };
    a.size.height / 2.0 + gap + b.size.height / 2.0
}

/// Runs each long edge straight from its label on, where its neighbours leave room: the
/// heights its label and bends may take without moving anything else are intersected, and
/// where some height is left they all take the one nearest their median.
fn straighten(
    layers: &[Vec<usize>],
    items: &[Item],
    chains: &[Vec<usize>],
    spacing: Spacing,
    centre: &mut [f64],
) {
    let mut place = vec![(0, 0); items.len()];
    for (l, layer) in layers.iter().enumerate() {
        for (k, &i) in layer.iter().enumerate() {
            place[i] = (l, k);
        }
    }
    for chain in chains.iter().filter(|c| c.len() > 3) {
        let run = &chain[1..chain.len() - 1];
        let (mut lo, mut hi) = (f64::NEG_INFINITY, f64::INFINITY);
        for &i in run {
            let (l, k) = place[i];
            if let Some(&before) = k.checked_sub(1).map(|k| &layers[l][k]) {
                lo = lo.max(centre[before] + distance(&items[before], &items[i], spacing));
            }
            if let Some(&after) = layers[l].get(k + 1) {
                hi = hi.min(centre[after] - distance(&items[i], &items[after], spacing));
            }
        }
        if lo <= hi {
            let mut heights: Vec<f64> = run.iter().map(|&i| centre[i]).collect();
            heights.sort_by(f64::total_cmp);
            let y = heights[heights.len() / 2].clamp(lo, hi);
            for &i in run {
                centre[i] = y;
            }
        }
    }
}

/// Places one layer's items (in order, without overlaps) so that the sum of the squared
/// distances of their centres from `desired` is least: isotonic regression by pooling adjacent
/// violators, on the desired centres less each item's offset in the tightly stacked layer.
fn fit(layer: &[usize], desired: &[f64], items: &[Item], spacing: Spacing, centre: &mut [f64]) {
    let mut offsets = Vec::with_capacity(layer.len());
    let mut offset = 0.0;
    for (k, &i) in layer.iter().enumerate() {
        if k > 0 {
            let before = &items[layer[k - 1]];
            offset += distance(before, &items[i], spacing);
        }
        offsets.push(offset);
    }
    // Blocks of items that move together: (sum of targets, count).
    let mut blocks: Vec<(f64, usize)> = Vec::new();
    for (d, o) in desired.iter().zip(&offsets) {
        blocks.push((d - o, 1));
        while let [.., (s0, n0), (s1, n1)] = blocks[..] {
            if s0 / n0 as f64 <= s1 / n1 as f64 {
                break;
            }
            blocks.pop();
            let last = blocks.len() - 1;
            blocks[last] = (s0 + s1, n0 + n1);
        }
    }
    let mut k = 0;
    for (sum, n) in blocks {
        for _ in 0..n {
            centre[layer[k]] = sum / n as f64 + offsets[k];
            k += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPACING: Spacing = Spacing {
        column: 20.0,
        row: 10.0,
        margin: 5.0,
    };

    fn size(width: f64, height: f64) -> Size {
        Size { width, height }
    }

    #[test]
    fn fit_keeps_the_order_and_the_gaps_and_meets_free_targets() {
        let items: Vec<Item> = (0..3)
            .map(|_| Item {
                layer: 0,
                size: size(10.0, 20.0),
                bend: false,
            })
            .collect();
        let mut centre = vec![0.0; 3];
        // Far apart: each item sits at its target.
        fit(
            &[0, 1, 2],
            &[0.0, 100.0, 200.0],
            &items,
            SPACING,
            &mut centre,
        );
        assert_eq!(centre, vec![0.0, 100.0, 200.0]);
        // All wanting 50: stacked 30 apart around 50.
        fit(&[0, 1, 2], &[50.0; 3], &items, SPACING, &mut centre);
        assert_eq!(centre, vec![20.0, 50.0, 80.0]);
    }

    #[test]
    fn crossings_are_counted() {
        // 0 -> 3 and 1 -> 2 with 0 above 1 and 2 above 3: one crossing.
        let layers = vec![vec![0, 1], vec![2, 3]];
        let down = vec![vec![3], vec![2], vec![], vec![]];
        assert_eq!(crossings(&layers, &down, &[0, 1, 0, 1]), 1);
        assert_eq!(crossings(&layers, &down, &[0, 1, 1, 0]), 0);
    }

    fn edge(from: usize, to: usize, label: Size) -> Edge {
        Edge { from, to, label }
    }

    #[test]
    fn a_used_node_moves_right_up_to_its_first_use() {
        // 0 -> 1 -> 2 -> 4 and 0 -> 3 -> 4: node 3 goes to column 2, next to 4.
        let l = size(5.0, 5.0);
        let edges = [
            edge(0, 1, l),
            edge(1, 2, l),
            edge(2, 4, l),
            edge(0, 3, l),
            edge(3, 4, l),
        ];
        assert_eq!(columns(5, &edges), vec![0, 1, 2, 2, 3]);
    }

    /// A random graph in a topological order: `inputs` inputs, then nodes with one to three
    /// parents each (as a trace records them), boxes of random sizes.
    fn random_graph(seed: u64, inputs: usize, nodes: usize) -> (Vec<Size>, Vec<Edge>) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let sizes = (0..nodes)
            .map(|_| size(rng.random_range(60.0..220.0), rng.random_range(40.0..120.0)))
            .collect();
        let mut edges = Vec::new();
        for to in inputs..nodes {
            let mut parents: Vec<usize> = (0..rng.random_range(1..=3))
                .map(|_| rng.random_range(0..to))
                .collect();
            parents.sort_unstable();
            parents.dedup();
            for from in parents {
                let label = size(rng.random_range(50.0..130.0), rng.random_range(25.0..45.0));
                edges.push(edge(from, to, label));
            }
        }
        (sizes, edges)
    }

    /// Every box, node and label, of a layout.
    fn all_boxes(placed: &Layout) -> Vec<Rect> {
        let labels = placed.routes.iter().map(|r| r.label);
        placed.boxes.iter().copied().chain(labels).collect()
    }

    #[test]
    fn layouts_put_inputs_first_run_edges_left_to_right_and_never_overlap() {
        for seed in 0..40 {
            let (sizes, edges) = random_graph(seed, 1 + seed as usize % 4, 5 + seed as usize);
            let placed = layout(&sizes, &edges, SPACING);
            for (i, b) in placed.boxes.iter().enumerate() {
                assert_eq!((b.width, b.height), (sizes[i].width, sizes[i].height));
                let input = !edges.iter().any(|e| e.to == i);
                assert_eq!(placed.columns[i] == 0, input, "seed {seed}, node {i}");
            }
            for (e, route) in edges.iter().zip(&placed.routes) {
                assert!(placed.columns[e.from] < placed.columns[e.to]);
                let (from, to) = (placed.boxes[e.from], placed.boxes[e.to]);
                let (first, last) = (route.points[0], route.points[route.points.len() - 1]);
                assert_eq!(first.0, from.right());
                assert!(from.y <= first.1 && first.1 <= from.bottom());
                assert_eq!(last.0, to.x);
                assert!(to.y <= last.1 && last.1 <= to.bottom());
                assert!(
                    route.points.windows(2).all(|p| p[0].0 <= p[1].0),
                    "seed {seed}: {route:?}"
                );
            }
            let boxes = all_boxes(&placed);
            for (i, a) in boxes.iter().enumerate() {
                assert!(a.x >= SPACING.margin && a.y >= SPACING.margin - 1e-9);
                assert!(a.right() <= placed.width && a.bottom() <= placed.height + 1e-9);
                for b in &boxes[i + 1..] {
                    assert!(!a.overlaps(b), "seed {seed}: {a:?} and {b:?}");
                }
            }
        }
    }

    /// No large blank areas: the picture is at most a little taller than its tallest column
    /// stacked tightly, and its boxes cover a fair share of it.
    #[test]
    fn layouts_are_compact() {
        for seed in 0..40 {
            let (sizes, edges) = random_graph(seed, 1 + seed as usize % 4, 5 + seed as usize);
            let placed = layout(&sizes, &edges, SPACING);
            let boxes = all_boxes(&placed);
            let mut stacks: std::collections::HashMap<u64, f64> = Default::default();
            for b in &boxes {
                let centre = (b.x + b.width / 2.0).to_bits();
                *stacks.entry(centre).or_default() += b.height + SPACING.row;
            }
            let tallest = stacks.values().fold(0.0, |a: f64, &b| a.max(b));
            let covered: f64 = boxes.iter().map(|b| b.width * b.height).sum();
            let share = covered / (placed.width * placed.height);
            let stretch = placed.height / (tallest + 2.0 * SPACING.margin);
            // Measured on these graphs (many long edges): shares 0.18 to 0.41, stretches 1.0
            // to 2.0.
            assert!(
                share > 0.15 && stretch < 2.5,
                "seed {seed}: boxes cover {share:.2} of the picture, which is {stretch:.2} times \
                 as tall as its tallest column"
            );
        }
    }
}
