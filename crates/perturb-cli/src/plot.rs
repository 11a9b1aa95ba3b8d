//! Pictures of a training run, each as PNG and SVG: the loss per epoch, and for data with two
//! features the decision boundary with the data points.
//!
//! Everything is drawn in pure Rust (plotters without its system-font and system-library
//! features); the text uses DejaVu Sans from `assets/`, embedded in the program, so the
//! pictures are the same on every machine, with or without fonts installed.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

/// DejaVu Sans, cut down to a few scripts and symbols (see `assets/README.md`).
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");

/// Whether the embedded font has a glyph for `c`: the characters of the subset command in
/// `assets/README.md` (others would be drawn as blanks).
pub fn has_glyph(c: char) -> bool {
    matches!(c, ' '..='~' | '\u{a0}'..='\u{17f}' | '\u{370}'..='\u{4ff}'
        | '–' | '—' | '…' | '←' | '→' | '∂' | '∑' | '−')
}
/// Text as the embedded font can draw it: a character it has no glyph for written as
/// `\u{..}`. The PNG pictures' text passes through it (a column named in Chinese was drawn as
/// nothing there: blank axes, a legend of "= 0"); an SVG's text is drawn by its viewer, with
/// the fonts it has, and is kept as it is.
pub fn drawable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if has_glyph(c) {
                c.to_string()
            } else {
                format!("\\u{{{:x}}}", u32::from(c))
            }
        })
        .collect()
}

/// The family the font is registered under: plotters' default for labels.
pub const FAMILY: &str = "sans-serif";

/// Registers the embedded font with plotters (once); text cannot be drawn before.
pub fn register_font() -> Result<(), String> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        result = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
            .map_err(|_| "the embedded font could not be read".to_string());
    });
    result
}

/// Class colours (matplotlib's "tab10": distinguishable, also for most colour-blind readers).
const PALETTE: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

fn class_colour(class: usize) -> RGBColor {
    let (r, g, b) = PALETTE[class % PALETTE.len()];
    RGBColor(r, g, b)
}

/// `colour` mixed with white: `share` 0 is white, 1 the colour.
fn tint(colour: RGBColor, share: f64) -> RGBColor {
    let mix = |c: u8| (255.0 - (255.0 - f64::from(c)) * share).round() as u8;
    RGBColor(mix(colour.0), mix(colour.1), mix(colour.2))
}

/// A number for an axis label: at most 4 significant digits, no trailing zeros.
fn short(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let magnitude = v.abs().log10().floor() as i32;
    if !(-4..6).contains(&magnitude) {
        return format!("{v:.2e}");
    }
    let decimals = (3 - magnitude).max(0) as usize;
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// The largest size of a linear axis' ends: the span of two such ends, and the distance of a
/// point on the axis from either, are still finite (plotters computes them, and the grid of the
/// boundary picture steps by a fraction of the span). Data out at the float limits (a feature
/// from -1e308 to 1e308) is drawn on axes that stop short of it; on an infinite span, drawing
/// never finished.
const AXIS_LIMIT: f64 = f64::MAX / 2.0;

/// The ends of a linear axis for finite data from `lo` to `hi`: padded by `share` of the span
/// (at least `min_pad`) on each side, within [`AXIS_LIMIT`].
fn padded(lo: f64, hi: f64, share: f64, min_pad: f64) -> (f64, f64) {
    let (lo, hi) = (
        lo.clamp(-AXIS_LIMIT, AXIS_LIMIT),
        hi.clamp(-AXIS_LIMIT, AXIS_LIMIT),
    );
    let pad = ((hi - lo) * share).max(min_pad);
    ((lo - pad).max(-AXIS_LIMIT), (hi + pad).min(AXIS_LIMIT))
}

/// A tick label on a linear axis spanning `span`: [`short`], but 0 for a value within a
/// billionth of the span of 0. Plotters steps the ticks from the axis' end, so the tick at 0
/// of an axis from -1.2 to 1.2 came out as -2.22e-16 and was labelled so. A logarithmic axis
/// passes a span of 0: its ticks are never 0.
fn tick(v: f64, span: f64) -> String {
    if v.abs() <= span * 1e-9 {
        short(0.0)
    } else {
        short(v)
    }
}

fn err<E: std::fmt::Display>(file: &Path) -> impl Fn(E) -> String + '_ {
    move |e| format!("cannot draw {}: {e}", file.display())
}

/// A picture that can be drawn on any backend.
trait Picture {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        format: Format,
    ) -> Result<(), String>;
}

/// Draws one picture to `dir/{stem}.png` and `dir/{stem}.svg`, each atomically (drawn under a
/// temporary name, then renamed): a failure leaves the earlier pictures whole.
fn both(
    dir: &Path,
    stem: &str,
    size: (u32, u32),
    picture: &impl Picture,
) -> Result<[PathBuf; 2], String> {
    register_font()?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let png = dir.join(format!("{stem}.png"));
    let svg = dir.join(format!("{stem}.svg"));
    crate::out_dir::write_atomic(&png, |tmp| {
        let root = BitMapBackend::new(tmp, size).into_drawing_area();
        picture.draw(&root, Format::Png)?;
        root.present().map_err(err(&png))
    })?;
    crate::out_dir::write_atomic(&svg, |tmp| {
        let root = SVGBackend::new(tmp, size).into_drawing_area();
        picture.draw(&root, Format::Svg)?;
        root.present().map_err(err(&svg))
    })?;
    Ok([png, svg])
}

/// Which file a drawing function is drawing (the SVG uses a coarser grid, to stay small).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Png,
    Svg,
}

impl Format {
    /// `s` as this format's pictures draw it: [`drawable`] in a PNG, as it is in an SVG.
    fn text(self, s: &str) -> String {
        match self {
            Format::Png => drawable(s),
            Format::Svg => s.to_string(),
        }
    }
}

/// One line of the loss picture: `(epoch, loss)` points.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// Keeps at most about `max` points of a series (always the first and the last), so a long run
/// gives a small SVG.
fn thin(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    let step = points.len().div_ceil(max.max(1)).max(1);
    let mut kept: Vec<(f64, f64)> = points.iter().copied().step_by(step).collect();
    if let (Some(last), Some(kept_last)) = (points.last(), kept.last()) {
        if kept_last != last {
            kept.push(*last);
        }
    }
    kept
}

/// Draws the loss per epoch (`series`: the training loss, and the test loss where measured)
/// to `dir/{stem}.png` and `dir/{stem}.svg`, on a logarithmic axis where the loss spans more than
/// a factor of 20.
pub fn loss_curve(
    dir: &Path,
    stem: &str,
    title: &str,
    y_desc: &str,
    series: &[Series],
) -> Result<[PathBuf; 2], String> {
    let finite = |&&(_, l): &&(f64, f64)| l.is_finite();
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().filter(finite).copied())
        .collect();
    let (mut lo, mut hi) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.1), b.max(p.1))
        });
    let last_epoch = all.iter().map(|p| p.0).fold(1.0, f64::max);
    if !(lo.is_finite() && hi.is_finite()) {
        (lo, hi) = (0.0, 1.0);
    }
    let series: Vec<Series> = series
        .iter()
        .map(|s| Series {
            label: s.label.clone(),
            points: thin(
                &s.points.iter().filter(finite).copied().collect::<Vec<_>>(),
                1500,
            ),
        })
        .collect();
    let picture = LossPicture {
        title,
        y_desc,
        last_epoch,
        range: (lo, hi),
        series: &series,
    };
    both(dir, stem, (800, 500), &picture)
}

struct LossPicture<'a> {
    title: &'a str,
    y_desc: &'a str,
    last_epoch: f64,
    range: (f64, f64),
    series: &'a [Series],
}

impl Picture for LossPicture<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        format: Format,
    ) -> Result<(), String> {
        let (lo, hi) = self.range;
        let (title, y_desc, last, series) = (self.title, self.y_desc, self.last_epoch, self.series);
        if lo > 0.0 && hi / lo > 20.0 {
            // At most the largest float: `hi * 1.25` can overflow, and the decades up to
            // infinity never end.
            let (lo, hi) = (lo / 1.25, (hi * 1.25).min(f64::MAX));
            // Labels at 1, 2 and 5 times the powers of ten (only the powers over more than
            // four decades), light lines at the other multiples.
            let decades = (lo.log10().floor() as i32)..=(hi.log10().ceil() as i32);
            let multiples = |m: &'static [f64]| {
                decades
                    .clone()
                    .flat_map(move |k| m.iter().map(move |m| m * 10f64.powi(k)))
                    .filter(|v| (lo..=hi).contains(v))
                    .collect::<Vec<f64>>()
            };
            let labelled = multiples(if hi / lo > 1e4 {
                &[1.0]
            } else {
                &[1.0, 2.0, 5.0]
            });
            let light = multiples(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
            let y = (lo..hi)
                .log_scale()
                .with_key_points(labelled)
                .with_light_points(light);
            draw_loss(root, format, [title, y_desc], last, (y, 0.0), series)
        } else {
            let (lo, hi) = padded(lo, hi, 0.05, 1e-12);
            let lo = lo.min(0.0);
            draw_loss(
                root,
                format,
                [title, y_desc],
                last,
                (lo..hi, hi - lo),
                series,
            )
        }
    }
}

fn draw_loss<DB, Y>(
    root: &DrawingArea<DB, Shift>,
    format: Format,
    [title, y_desc]: [&str; 2],
    last_epoch: f64,
    (y, y_span): (Y, f64),
    series: &[Series],
) -> Result<(), String>
where
    DB: DrawingBackend,
    Y: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
    Y::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| format!("cannot draw the loss curve: {e}");
    root.fill(&WHITE).map_err(e)?;
    let mut chart = ChartBuilder::on(root)
        .caption(format.text(title), (FAMILY, 20))
        .margin(12)
        .margin_right(30)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..last_epoch, y)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(format.text(y_desc))
        .axis_desc_style((FAMILY, 16))
        .label_style((FAMILY, 13))
        .x_label_formatter(&|v| tick(*v, last_epoch))
        .y_label_formatter(&|v| tick(*v, y_span))
        .max_light_lines(1)
        .light_line_style(RGBColor(240, 240, 240))
        .bold_line_style(RGBColor(220, 220, 220))
        .draw()
        .map_err(e)?;
    for (i, s) in series.iter().enumerate() {
        let colour = class_colour(i);
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                colour.stroke_width(2),
            ))
            .map_err(e)?
            .label(format.text(&s.label))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 22, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FAMILY, 14))
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(160, 160, 160))
        .draw()
        .map_err(e)?;
    Ok(())
}

/// The most classes a decision-boundary picture is drawn for. Its grid holds every class's
/// probability at each of its 220 x 220 cells (and the boundary is traced once per class):
/// 65 536 classes, which `--task multiclass` takes, asked for 25 GB and aborted the program
/// once the model was saved. Far fewer classes already share the palette's 10 colours.
pub const MAX_BOUNDARY_CLASSES: usize = 256;

/// The data of a decision-boundary picture: points in the original units, with their classes.
pub struct Boundary<'a> {
    pub title: String,
    /// The two features' names.
    pub axes: [String; 2],
    /// How each class is named in the legend, e.g. "label = 1".
    pub class_names: Vec<String>,
    pub train: &'a [([f64; 2], usize)],
    pub test: &'a [([f64; 2], usize)],
}

/// The model's class probabilities at each point (one row per point, one entry per class).
pub type Probabilities<'a> = dyn Fn(&[[f64; 2]]) -> Result<Vec<Vec<f64>>, String> + 'a;

/// Draws the decision boundary to `dir/boundary.png` and `dir/boundary.svg`: over the data's
/// range (padded by a tenth) each cell of a grid is shaded in the colour of the class the model
/// predicts there, darker where the model is surer (five steps); the boundary between classes
/// is a dark line; the training points are circles and the test points triangles, in the colour
/// of their true class.
pub fn boundary(
    dir: &Path,
    plot: &Boundary<'_>,
    probabilities: &Probabilities<'_>,
) -> Result<[PathBuf; 2], String> {
    let points = plot.train.iter().chain(plot.test);
    let mut range = [[f64::INFINITY, f64::NEG_INFINITY]; 2];
    for (p, _) in points {
        for k in 0..2 {
            range[k][0] = range[k][0].min(p[k]);
            range[k][1] = range[k][1].max(p[k]);
        }
    }
    for r in &mut range {
        if !(r[0].is_finite() && r[1].is_finite()) {
            *r = [-1.0, 1.0];
        }
        let (lo, hi) = padded(r[0], r[1], 0.1, 1e-6);
        *r = [lo, hi];
    }
    let picture = BoundaryPicture {
        plot,
        probabilities,
        range,
    };
    both(dir, "boundary", (720, 640), &picture)
}

struct BoundaryPicture<'a> {
    plot: &'a Boundary<'a>,
    probabilities: &'a Probabilities<'a>,
    range: [[f64; 2]; 2],
}

impl Picture for BoundaryPicture<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        format: Format,
    ) -> Result<(), String> {
        draw_boundary(root, self.plot, self.probabilities, self.range, format)
    }
}

fn draw_boundary<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    plot: &Boundary<'_>,
    probabilities: &Probabilities<'_>,
    [xr, yr]: [[f64; 2]; 2],
    format: Format,
) -> Result<(), String> {
    let cells = if format == Format::Png { 220 } else { 150 };
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| format!("cannot draw the boundary: {e}");
    root.fill(&WHITE).map_err(e)?;
    let (main, strip) = root.split_vertically(root.dim_in_pixel().1 - 44);
    let mut chart = ChartBuilder::on(&main)
        .caption(format.text(&plot.title), (FAMILY, 20))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(xr[0]..xr[1], yr[0]..yr[1])
        .map_err(e)?;

    // The model on the centres of a cells x cells grid.
    let (dx, dy) = (
        (xr[1] - xr[0]) / cells as f64,
        (yr[1] - yr[0]) / cells as f64,
    );
    let centres: Vec<[f64; 2]> = (0..cells)
        .flat_map(|j| {
            (0..cells).map(move |i| [xr[0] + (i as f64 + 0.5) * dx, yr[0] + (j as f64 + 0.5) * dy])
        })
        .collect();
    let probs = probabilities(&centres)?;
    if probs.len() != centres.len() {
        return Err("cannot draw the boundary: the model gave too few outputs".into());
    }
    let classes = probs.first().map_or(1, Vec::len).max(1);
    // Each cell: the predicted class and how sure the model is, in 5 steps (0: a coin toss
    // between the classes, 4: certain).
    let shade = |p: &[f64]| -> (usize, usize) {
        let (class, top) =
            p.iter()
                .copied()
                .enumerate()
                .fold(
                    (0, f64::NEG_INFINITY),
                    |b, (i, v)| if v > b.1 { (i, v) } else { b },
                );
        let chance = 1.0 / classes as f64;
        let sure = ((top - chance) / (1.0 - chance)).clamp(0.0, 1.0);
        (class, ((sure * 5.0) as usize).min(4))
    };
    let colour =
        |(class, level): (usize, usize)| tint(class_colour(class), 0.12 + 0.1 * level as f64);
    // One rectangle per run of equal shades along a row, so the SVG stays small.
    let mut rects = Vec::new();
    for j in 0..cells {
        let mut start = 0;
        for i in 1..=cells {
            let here = shade(&probs[j * cells + start]);
            if i == cells || shade(&probs[j * cells + i]) != here {
                rects.push(Rectangle::new(
                    [
                        (xr[0] + start as f64 * dx, yr[0] + j as f64 * dy),
                        (xr[0] + i as f64 * dx, yr[0] + (j + 1) as f64 * dy),
                    ],
                    colour(here).filled(),
                ));
                start = i;
            }
        }
    }
    chart.draw_series(rects).map_err(e)?;

    // The boundary of each class's region: the zero line of (its probability minus the largest
    // other one), by marching squares over the grid of centres.
    let margin = |p: &[f64], c: usize| {
        let other = p
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != c)
            .fold(f64::NEG_INFINITY, |m, (_, &v)| m.max(v));
        p[c] - other
    };
    let line = RGBColor(40, 40, 40).stroke_width(2);
    let mut segments = Vec::new();
    // Two classes share one boundary: draw it once.
    let regions = if classes <= 2 { 1 } else { classes };
    for c in 0..regions {
        let g = |i: usize, j: usize| margin(&probs[j * cells + i], c);
        let at = |i: usize, j: usize| centres[j * cells + i];
        for j in 0..cells - 1 {
            for i in 0..cells - 1 {
                let corners = [(i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1)];
                let mut crossings = Vec::new();
                for k in 0..4 {
                    let (a, b) = (corners[k], corners[(k + 1) % 4]);
                    let (ga, gb) = (g(a.0, a.1), g(b.0, b.1));
                    if (ga > 0.0) != (gb > 0.0) {
                        let t = ga / (ga - gb);
                        let (pa, pb) = (at(a.0, a.1), at(b.0, b.1));
                        crossings.push((pa[0] + t * (pb[0] - pa[0]), pa[1] + t * (pb[1] - pa[1])));
                    }
                }
                for pair in crossings.chunks_exact(2) {
                    segments.push(PathElement::new(vec![pair[0], pair[1]], line));
                }
            }
        }
    }
    chart.draw_series(segments).map_err(e)?;

    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(format.text(&plot.axes[0]))
        .y_desc(format.text(&plot.axes[1]))
        .axis_desc_style((FAMILY, 16))
        .label_style((FAMILY, 13))
        .x_label_formatter(&|v| tick(*v, xr[1] - xr[0]))
        .y_label_formatter(&|v| tick(*v, yr[1] - yr[0]))
        .draw()
        .map_err(e)?;

    // The points: a dark marker under a coloured one, so each has an outline.
    let dark = RGBColor(20, 20, 20);
    chart
        .draw_series(plot.train.iter().flat_map(|&([x, y], c)| {
            [
                Circle::new((x, y), 5, dark.filled()),
                Circle::new((x, y), 4, class_colour(c).filled()),
            ]
        }))
        .map_err(e)?;
    chart
        .draw_series(plot.test.iter().flat_map(|&([x, y], c)| {
            [
                TriangleMarker::new((x, y), 8, dark.filled()),
                TriangleMarker::new((x, y), 5, class_colour(c).filled()),
            ]
        }))
        .map_err(e)?;

    // The legend, in a strip under the chart.
    let font = (FAMILY, 15).into_font().color(&BLACK);
    let mut x = 70;
    let y = 20;
    let mut item = |marker: &dyn Fn(i32) -> Result<(), String>, text: &str| -> Result<(), String> {
        marker(x)?;
        strip.draw_text(text, &font, (x + 12, y - 8)).map_err(e)?;
        let (w, _) = strip.estimate_text_size(text, &font).map_err(e)?;
        x += 12 + w as i32 + 22;
        Ok(())
    };
    for (c, name) in plot.class_names.iter().enumerate().take(classes.max(2)) {
        item(
            &|x| {
                strip
                    .draw(&Rectangle::new(
                        [(x - 6, y - 6), (x + 6, y + 6)],
                        class_colour(c).filled(),
                    ))
                    .map_err(e)
            },
            &format.text(name),
        )?;
    }
    let grey = RGBColor(150, 150, 150);
    item(
        &|x| {
            strip
                .draw(&Circle::new((x, y), 5, dark.filled()))
                .and_then(|()| strip.draw(&Circle::new((x, y), 4, grey.filled())))
                .map_err(e)
        },
        "train",
    )?;
    item(
        &|x| {
            strip
                .draw(&TriangleMarker::new((x, y), 8, dark.filled()))
                .and_then(|()| strip.draw(&TriangleMarker::new((x, y), 5, grey.filled())))
                .map_err(e)
        },
        "test",
    )?;
    item(
        &|x| {
            strip
                .draw(&PathElement::new([(x - 8, y), (x + 8, y)], line))
                .map_err(e)
        },
        "boundary",
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_numbers_are_short() {
        assert_eq!(short(0.30000000000000004), "0.3");
        assert_eq!(short(2500.0), "2500");
        assert_eq!(short(-1.25), "-1.25");
        assert_eq!(short(0.012345), "0.01235");
        assert_eq!(short(0.0), "0");
        assert_eq!(short(1e-7), "1.00e-7");
    }

    /// Found by hunt 3: a loss near the largest float (a diverging run's last finite loss)
    /// made the logarithmic axis end at `hi * 1.25` = inf, and the linear one at `hi + pad` =
    /// inf; listing the decades up to infinity (or plotters' own steps) never finished. Each
    /// is drawn on a thread given a minute.
    #[test]
    fn losses_near_the_largest_float_are_drawn() {
        let dir = std::env::temp_dir().join(format!("perturb-plot-huge-{}", std::process::id()));
        for (k, points) in [
            vec![(0.0, 1.0), (1.0, 1.6e308)],
            vec![(0.0, 0.0), (1.0, f64::MAX)],
            vec![(0.0, f64::MAX / 3.0), (1.0, f64::MAX)],
        ]
        .into_iter()
        .enumerate()
        {
            let (send, receive) = std::sync::mpsc::channel();
            let stem = format!("loss{k}");
            let folder = dir.clone();
            std::thread::spawn(move || {
                let series = [Series {
                    label: "training".into(),
                    points,
                }];
                send.send(loss_curve(&folder, &stem, "title", "loss", &series))
                    .ok();
            });
            let drawn = receive
                .recv_timeout(std::time::Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("loss curve {k} not drawn within a minute"));
            let [png, svg] = drawn.unwrap();
            assert!(png.exists() && svg.exists());
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_tick_at_zero_is_labelled_0() {
        assert_eq!(tick(-2.220446049250313e-16, 2.4), "0");
        assert_eq!(tick(0.2, 2.4), "0.2");
        // On a logarithmic axis (span 0) a small tick keeps its value.
        assert_eq!(tick(1e-10, 0.0), "1.00e-10");
    }

    #[test]
    fn thinning_keeps_the_ends() {
        let points: Vec<(f64, f64)> = (0..10_000).map(|i| (i as f64, 1.0)).collect();
        let kept = thin(&points, 1000);
        assert!(kept.len() <= 1001);
        assert_eq!(kept.first(), points.first());
        assert_eq!(kept.last(), points.last());
        assert_eq!(thin(&points[..3], 1000).len(), 3);
    }
}
