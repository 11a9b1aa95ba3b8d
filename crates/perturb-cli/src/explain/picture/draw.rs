//! Draws a [`Figure`] as SVG or PNG with plotters, in pure Rust: the text uses the font
//! embedded in the program (as the training pictures do), so the picture is the same on every
//! machine. Both formats come from the same drawing code.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::layout::{layout, Edge, Layout, Rect, Size, Spacing};
use super::{Figure, Kind};
use crate::plot::{register_font, FAMILY};

/// The file format of a picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Svg,
    Png,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Svg => "SVG",
            Format::Png => "PNG",
        }
    }
}

/// Text sizes in pixels: even, since plotters puts the baseline half a size below the top
/// and cuts fractions towards 0, which moves some glyphs a pixel up or down at odd sizes.
const CAPTION: f64 = 14.0;
const TITLE: f64 = 16.0;
const BODY: f64 = 14.0;
const DETAIL: f64 = 12.0;
/// A line is this much taller than its text.
const LEADING: f64 = 5.0;
/// Between a box's border and its text.
const PAD: f64 = 7.0;
const SPACING: Spacing = Spacing {
    column: 26.0,
    row: 14.0,
    margin: 12.0,
};

const INK: RGBColor = RGBColor(30, 30, 30);
const GREY: RGBColor = RGBColor(110, 110, 110);
const EDGE: RGBColor = RGBColor(125, 125, 125);
const REUSED: RGBColor = RGBColor(214, 110, 0);
const SWEEP_BAND: RGBColor = RGBColor(255, 243, 205);
const SWEEP_INK: RGBColor = RGBColor(150, 40, 0);

/// Fill and border of a card.
fn colours(kind: Kind) -> (RGBColor, RGBColor) {
    match kind {
        Kind::Input => (RGBColor(222, 235, 255), RGBColor(60, 100, 170)),
        Kind::Operation => (RGBColor(255, 255, 255), RGBColor(90, 90, 90)),
        Kind::Output => (RGBColor(222, 244, 222), RGBColor(40, 130, 50)),
        Kind::Unused => (RGBColor(244, 244, 244), RGBColor(175, 175, 175)),
    }
}

/// The width and height of `text` at `size` pixels in the embedded font.
fn measure(text: &str, size: f64) -> Result<(f64, f64), String> {
    let (w, _) = (FAMILY, size)
        .into_font()
        .box_size(text)
        .map_err(|e| format!("cannot measure the text `{text}`: {e}"))?;
    Ok((f64::from(w), size + LEADING))
}

/// The size of a block of lines, each with its text size.
fn block(lines: &[(&str, f64)]) -> Result<Size, String> {
    let mut size = Size::default();
    for &(text, px) in lines {
        let (w, h) = measure(text, px)?;
        size.width = size.width.max(w);
        size.height += h;
    }
    Ok(Size {
        width: size.width + 2.0 * PAD,
        height: size.height + 2.0 * PAD,
    })
}

/// A card's lines, each with its text size and colour.
fn card_lines(card: &super::Card) -> Vec<(String, f64, RGBColor)> {
    let ink = if card.kind == Kind::Unused { GREY } else { INK };
    let mut lines = vec![(card.title.clone(), TITLE, ink)];
    if card.uses > 1 {
        lines.push((format!("used {} times", card.uses), BODY, REUSED));
    }
    lines.extend(card.lines.iter().map(|l| (l.clone(), BODY, ink)));
    lines.extend(
        card.sweep
            .iter()
            .flat_map(|l| wrap(l))
            .map(|l| (l, BODY, SWEEP_INK)),
    );
    lines
}

/// At most this many terms of a sum are drawn on one line.
const TERMS_PER_LINE: usize = 4;

/// `d = t1 + t2 + ... = total` with more than [`TERMS_PER_LINE`] terms, over several lines
/// (continued with `+` and ended with `= total`), so that a value used many times does not
/// make its card as wide as its sum; other lines as they are.
fn wrap(line: &str) -> Vec<String> {
    let split = line
        .split_once(" = ")
        .and_then(|(head, rest)| Some((head, rest.rsplit_once(" = ")?)));
    let Some((head, (sum, total))) = split else {
        return vec![line.to_string()];
    };
    let terms: Vec<&str> = sum.split(" + ").collect();
    if terms.len() <= TERMS_PER_LINE {
        return vec![line.to_string()];
    }
    let mut lines: Vec<String> = terms
        .chunks(TERMS_PER_LINE)
        .enumerate()
        .map(|(k, chunk)| {
            let joined = chunk.join(" + ");
            if k == 0 {
                format!("{head} = {joined}")
            } else {
                format!("    + {joined}")
            }
        })
        .collect();
    lines.push(format!("    = {total}"));
    lines
}

/// An arrow's label lines, each with its text size and colour.
fn arrow_lines(arrow: &super::Arrow) -> Vec<(String, f64, RGBColor)> {
    let mut lines = vec![(arrow.amount.clone(), BODY, SWEEP_INK)];
    if let Some(detail) = &arrow.detail {
        lines.push((detail.clone(), DETAIL, GREY));
    }
    lines
}

fn sized(lines: &[(String, f64, RGBColor)]) -> Result<Size, String> {
    block(
        &lines
            .iter()
            .map(|(t, s, _)| (t.as_str(), *s))
            .collect::<Vec<_>>(),
    )
}

/// A figure laid out, ready to draw.
pub struct Placed<'a> {
    figure: &'a Figure,
    /// The graph's layout (below the caption).
    pub layout: Layout,
    pub width: f64,
    pub height: f64,
    /// The height of the caption above the graph.
    top: f64,
}

impl<'a> Placed<'a> {
    /// Measures every card and label in the embedded font and lays the graph out.
    pub fn new(figure: &'a Figure) -> Result<Placed<'a>, String> {
        register_font()?;
        let nodes = figure
            .cards
            .iter()
            .map(|c| sized(&card_lines(c)))
            .collect::<Result<Vec<_>, _>>()?;
        let edges = figure
            .arrows
            .iter()
            .map(|a| {
                Ok(Edge {
                    from: a.from,
                    to: a.to,
                    label: sized(&arrow_lines(a))?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let layout = layout(&nodes, &edges, SPACING);
        let caption = block(
            &figure
                .caption
                .iter()
                .map(|l| (l.as_str(), CAPTION))
                .collect::<Vec<_>>(),
        )?;
        let top = caption.height;
        Ok(Placed {
            figure,
            width: layout
                .width
                .max(caption.width + 2.0 * SPACING.margin)
                .ceil(),
            height: (top + layout.height).ceil(),
            top,
            layout,
        })
    }

    /// Draws the picture in memory: the bytes of the SVG or PNG file.
    pub fn render(&self, format: Format) -> Result<Vec<u8>, String> {
        let size = (self.width as u32, self.height as u32);
        let fail = |e: &dyn std::fmt::Display| format!("cannot draw the graph: {e}");
        match format {
            Format::Svg => {
                let mut svg = String::new();
                {
                    let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
                    self.paint(&root)?;
                    root.present().map_err(|e| fail(&e))?;
                }
                Ok(svg.into_bytes())
            }
            Format::Png => {
                let mut rgb = vec![0; size.0 as usize * size.1 as usize * 3];
                {
                    let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
                    self.paint(&root)?;
                    root.present().map_err(|e| fail(&e))?;
                }
                let mut png = Vec::new();
                let mut encoder = png::Encoder::new(&mut png, size.0, size.1);
                encoder.set_color(png::ColorType::Rgb);
                encoder.set_depth(png::BitDepth::Eight);
                // Flat colours and text: adaptive filters make the file a quarter smaller
                // (docs/explain-reverse.png: 113 kB without, 83 kB with).
                encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
                encoder
                    .write_header()
                    .and_then(|mut w| w.write_image_data(&rgb))
                    .map_err(|e| fail(&e))?;
                Ok(png)
            }
        }
    }

    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let fail = |e: DrawingAreaErrorKind<DB::ErrorType>| format!("cannot draw the graph: {e}");
        root.fill(&WHITE).map_err(fail)?;
        let mut y = SPACING.margin + PAD;
        for line in &self.figure.caption {
            text(root, line, SPACING.margin, y, CAPTION, GREY).map_err(fail)?;
            y += CAPTION + LEADING;
        }
        let shift = |r: &Rect| Rect {
            y: r.y + self.top,
            ..*r
        };
        for (arrow, route) in self.figure.arrows.iter().zip(&self.layout.routes) {
            let points: Vec<(f64, f64)> = route
                .points
                .iter()
                .map(|&(x, y)| (x, y + self.top))
                .collect();
            edge(root, &points).map_err(fail)?;
            let label = shift(&route.label);
            let swept = arrow.detail.is_some();
            let fill = if swept { SWEEP_BAND } else { WHITE };
            boxed(root, &label, fill, RGBColor(215, 195, 150), 1).map_err(fail)?;
            lines(root, &label, &arrow_lines(arrow)).map_err(fail)?;
        }
        for (card, r) in self.figure.cards.iter().zip(&self.layout.boxes) {
            let r = shift(r);
            let (fill, border) = colours(card.kind);
            let (border, width) = if card.uses > 1 {
                (REUSED, 3)
            } else {
                (border, 1)
            };
            boxed(root, &r, fill, border, width).map_err(fail)?;
            let all = card_lines(card);
            let swept = all.iter().filter(|l| l.2 == SWEEP_INK).count();
            if swept > 0 {
                // The sweep's lines on a band of their own, at the bottom of the card.
                let band = swept as f64 * (BODY + LEADING);
                let y0 = r.bottom() - PAD - band - 2.0;
                root.draw(&Rectangle::new(
                    [px(r.x + 2.0, y0), px(r.right() - 2.0, r.bottom() - 2.0)],
                    SWEEP_BAND.filled(),
                ))
                .map_err(fail)?;
            }
            lines(root, &r, &all).map_err(fail)?;
        }
        Ok(())
    }
}

/// A point in pixels.
fn px(x: f64, y: f64) -> (i32, i32) {
    (x.round() as i32, y.round() as i32)
}

type Drawn<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn text<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: &str,
    x: f64,
    y: f64,
    size: f64,
    colour: RGBColor,
) -> Drawn<DB> {
    let style = (FAMILY, size).into_font().color(&colour);
    root.draw(&Text::new(s.to_string(), px(x, y), style))
}

/// A filled box with a border `width` pixels wide.
fn boxed<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &Rect,
    fill: RGBColor,
    border: RGBColor,
    width: u32,
) -> Drawn<DB> {
    let corners = [px(r.x, r.y), px(r.right(), r.bottom())];
    root.draw(&Rectangle::new(corners, fill.filled()))?;
    root.draw(&Rectangle::new(corners, border.stroke_width(width)))
}

/// Lines of text inside box `r`, from its top.
fn lines<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &Rect,
    lines: &[(String, f64, RGBColor)],
) -> Drawn<DB> {
    let mut y = r.y + PAD;
    for (s, size, colour) in lines {
        text(root, s, r.x + PAD, y, *size, *colour)?;
        y += size + LEADING;
    }
    Ok(())
}

/// An edge along a route: curves between columns, straight runs through them, an arrowhead at
/// the end (every edge enters its node from the left).
fn edge<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, points: &[(f64, f64)]) -> Drawn<DB> {
    const STEPS: usize = 12;
    const HEAD: f64 = 8.0;
    let mut path = vec![px(points[0].0, points[0].1)];
    for (k, pair) in points.windows(2).enumerate() {
        let ((x0, y0), (mut x1, y1)) = (pair[0], pair[1]);
        if k + 2 == points.len() {
            x1 -= HEAD; // the arrowhead covers the last stretch
        }
        if k % 2 == 1 {
            path.push(px(x1, y1));
            continue;
        }
        // A cubic Bézier leaving and arriving horizontally.
        let dx = (x1 - x0) / 2.0;
        for s in 1..=STEPS {
            let t = s as f64 / STEPS as f64;
            let u = 1.0 - t;
            let x = u * u * u * x0
                + 3.0 * u * u * t * (x0 + dx)
                + 3.0 * u * t * t * (x1 - dx)
                + t * t * t * x1;
            let y = u * u * u * y0 + 3.0 * u * u * t * y0 + 3.0 * u * t * t * y1 + t * t * t * y1;
            path.push(px(x, y));
        }
    }
    root.draw(&PathElement::new(path, EDGE.stroke_width(2)))?;
    let &(x, y) = points.last().unwrap_or(&(0.0, 0.0));
    root.draw(&Polygon::new(
        vec![
            px(x, y),
            px(x - HEAD, y - HEAD / 2.0),
            px(x - HEAD, y + HEAD / 2.0),
        ],
        EDGE.filled(),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_sums_are_wrapped_and_short_lines_kept() {
        assert_eq!(
            super::wrap("dL/da = -5 + 3.5 = -1.5"),
            vec!["dL/da = -5 + 3.5 = -1.5"]
        );
        assert_eq!(super::wrap("dL/da = 0 (not used for L)").len(), 1);
        assert_eq!(
            super::wrap("dy/dx = 1 + 2 + 3 + 4 + 5 + (-6) = 9"),
            vec!["dy/dx = 1 + 2 + 3 + 4", "    + 5 + (-6)", "    = 9"]
        );
    }
}
