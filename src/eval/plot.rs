//! Rate-distortion plots (PSNR and MS-SSIM against bpp), as PNG and SVG.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::error::{Error, Result};

/// One curve: a name and its `(bpp, value)` points.
pub struct Curve {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

fn ensure_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The font is built in: nothing to read, so this cannot fail on a valid file.
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

const COLOURS: [RGBColor; 8] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn draw<DB: DrawingBackend>(
    area: DrawingArea<DB, plotters::coord::Shift>,
    y_label: &str,
    curves: &[Curve],
    max_bpp: f64,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: &dyn std::fmt::Display| Error::ImageEncode(format!("plot: {e}"));
    area.fill(&WHITE).map_err(|e| err(&e))?;
    let visible = |p: &&(f64, f64)| p.0 <= max_bpp && p.1.is_finite();
    let ys: Vec<f64> = curves
        .iter()
        .flat_map(|c| c.points.iter().filter(visible).map(|p| p.1))
        .collect();
    let (lo, hi) = ys
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &y| {
            (a.min(y), b.max(y))
        });
    let pad = ((hi - lo) * 0.05).max(1e-3);
    let mut chart = ChartBuilder::on(&area)
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .caption(format!("{y_label} vs bpp"), ("sans-serif", 22))
        .build_cartesian_2d(0.0..max_bpp, (lo - pad)..(hi + pad))
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("bits per pixel")
        .y_desc(y_label)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, curve) in curves.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let pts: Vec<(f64, f64)> = curve.points.iter().filter(visible).copied().collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), colour.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(curve.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
            });
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 3, colour.filled())))
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(|e| err(&e))?;
    area.present().map_err(|e| err(&e))?;
    Ok(())
}

/// Writes `<stem>.png` and `<stem>.svg` in `dir`.
pub fn write_plot(
    dir: &Path,
    stem: &str,
    y_label: &str,
    curves: &[Curve],
    max_bpp: f64,
) -> Result<()> {
    ensure_font();
    let (w, h) = (900u32, 600u32);
    let mut buffer = vec![0u8; (w * h * 3) as usize];
    draw(
        BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area(),
        y_label,
        curves,
        max_bpp,
    )?;
    let png = image::RgbImage::from_raw(w, h, buffer).expect("buffer of the right size");
    crate::io::save_image(
        &dir.join(format!("{stem}.png")),
        true,
        &image::DynamicImage::ImageRgb8(png),
    )?;
    let mut svg = String::new();
    draw(
        SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area(),
        y_label,
        curves,
        max_bpp,
    )?;
    crate::io::write_output(&dir.join(format!("{stem}.svg")), true, svg.as_bytes())
}
