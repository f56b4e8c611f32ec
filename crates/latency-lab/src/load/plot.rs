//! The two plots of a [`Run`], as SVG (plotters' SVG backend: text stays
//! text, any browser opens them):
//!
//! * the **percentile spectrum**, latency against percentile on a log
//!   "nines" axis (0, 90, 99, 99.9 … %), as HdrHistogram's plots draw it:
//!   the tail gets as much room as the median, one line per variant;
//! * **latency over time**, each request at its intended send time: a stall
//!   shows as a wall (open loop: every request due during it waits for its
//!   end, so their latencies fall in a straight ramp).

use plotters::prelude::*;

use super::record::Run;
use super::summary::{is_success, quantile_us, Summary, VariantSummary};

/// Size of both plots, in SVG pixels.
const SIZE: (u32, u32) = (960, 600);

/// Above this many requests a variant's over-time series keeps, per time
/// slot, only its fastest and slowest request (the SVG stays small; the
/// stall's wall and the floor are both kept).
const MAX_POINTS_PER_VARIANT: usize = 4_000;

/// Time slots when a variant's points are thinned.
const TIME_SLOTS: usize = 1_500;

/// A request on the over-time plot: (intended send time in s, latency in
/// ms, answered with 1xx–3xx).
type Point = (f64, f64, bool);

/// The plot could not be drawn (plotters' error, as text).
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the {plot} plot: {message}")]
pub struct PlotError {
    pub plot: &'static str,
    pub message: String,
}

/// The percentile spectrum as an SVG document.
pub fn percentile_spectrum_svg(run: &Run) -> Result<String, PlotError> {
    let fail = |e: &dyn std::fmt::Display| PlotError {
        plot: "percentile",
        message: e.to_string(),
    };
    let summary = Summary::of(run);
    let series: Vec<Vec<(f64, f64)>> = summary.variants.iter().map(spectrum).collect();
    // The x axis reaches the nines the largest variant can say anything about.
    let most = summary
        .variants
        .iter()
        .map(|v| v.requests)
        .max()
        .unwrap_or(1);
    let nines = (most.max(1) as f64).log10().ceil().clamp(2.0, 6.0) as i32;
    let x_end = 10f64.powi(nines);
    let y_end = y_top(series.iter().flatten().map(|(_, ms)| *ms));

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("Latency by percentile — {}", pacing_words(&summary)),
                ("sans-serif", 20),
            )
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(
                (1f64..x_end)
                    .log_scale()
                    .with_key_points((0..=nines).map(|k| 10f64.powi(k)).collect()),
                0f64..y_end,
            )
            .map_err(|e| fail(&e))?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency (ms)")
            .x_label_formatter(&|x| nines_label(*x))
            .y_label_formatter(&|y| axis_ms(*y))
            .draw()
            .map_err(|e| fail(&e))?;
        for (i, (variant, points)) in summary.variants.iter().zip(series).enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(|e| fail(&e))?
                .label(variant.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        legend(&mut chart).map_err(|e| fail(&e))?;
        root.present().map_err(|e| fail(&e))?;
    }
    Ok(svg)
}

/// Latency over time as an SVG document.
pub fn latency_over_time_svg(run: &Run) -> Result<String, PlotError> {
    let fail = |e: &dyn std::fmt::Display| PlotError {
        plot: "latency-over-time",
        message: e.to_string(),
    };
    let summary = Summary::of(run);
    let series: Vec<Vec<Point>> = (0..run.variants.len())
        .map(|variant| over_time(run, variant))
        .collect();
    let x_end = series
        .iter()
        .flatten()
        .map(|(s, _, _)| *s)
        .fold(run.elapsed.as_secs_f64(), f64::max)
        .max(1e-3);
    let y_end = y_top(series.iter().flatten().map(|(_, ms, _)| *ms));

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("Latency over time — {}", pacing_words(&summary)),
                ("sans-serif", 20),
            )
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(0f64..x_end, 0f64..y_end)
            .map_err(|e| fail(&e))?;
        chart
            .configure_mesh()
            .x_desc("intended send time (s from the start); × failed")
            .y_desc("latency (ms)")
            .y_label_formatter(&|y| axis_ms(*y))
            .draw()
            .map_err(|e| fail(&e))?;
        for (i, (variant, points)) in summary.variants.iter().zip(series).enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(points.into_iter().map(move |(s, ms, ok)| {
                    // A failure is a cross, so a wall of timeouts reads as such.
                    let style = color.filled();
                    if ok {
                        Circle::new((s, ms), 2, style).into_dyn()
                    } else {
                        Cross::new((s, ms), 4, color.stroke_width(1)).into_dyn()
                    }
                }))
                .map_err(|e| fail(&e))?
                .label(variant.label.clone())
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
        }
        legend(&mut chart).map_err(|e| fail(&e))?;
        root.present().map_err(|e| fail(&e))?;
    }
    Ok(svg)
}

/// The legend box, top left (where both plots are emptiest).
fn legend<'a, DB: DrawingBackend + 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
}

/// A variant's (1/(1−q), latency ms) points, 20 per decade, up to the
/// quantile its count can resolve, then its max there.
fn spectrum(variant: &VariantSummary) -> Vec<(f64, f64)> {
    let histogram = &variant.histogram;
    if histogram.is_empty() {
        return Vec::new();
    }
    let count = histogram.len() as f64;
    let mut points: Vec<(f64, f64)> = (0..)
        .map(|step| 10f64.powf(f64::from(step) / 20.0))
        .take_while(|x| *x < count)
        .map(|x| (x, ms(quantile_us(histogram, 1.0 - 1.0 / x))))
        .collect();
    points.push((
        count.max(1.0),
        ms(histogram.median_equivalent(histogram.max())),
    ));
    points
}

/// A variant's (intended s, latency ms, answered with 1xx–3xx) points,
/// thinned to each time slot's fastest and slowest when there are many.
fn over_time(run: &Run, variant: usize) -> Vec<Point> {
    let points: Vec<Point> = run
        .records
        .iter()
        .filter(|r| r.variant == variant)
        .map(|r| {
            let ok = is_success(&r.outcome);
            (
                r.intended.as_secs_f64(),
                r.latency.as_secs_f64() * 1000.0,
                ok,
            )
        })
        .collect();
    if points.len() <= MAX_POINTS_PER_VARIANT {
        return points;
    }
    let end = points.iter().map(|p| p.0).fold(0.0, f64::max).max(1e-9);
    let mut slots: Vec<Option<(Point, Point)>> = vec![None; TIME_SLOTS];
    for point in points {
        let slot = ((point.0 / end * TIME_SLOTS as f64) as usize).min(TIME_SLOTS - 1);
        let entry = slots[slot].get_or_insert((point, point));
        if point.1 < entry.0 .1 {
            entry.0 = point;
        }
        if point.1 > entry.1 .1 {
            entry.1 = point;
        }
    }
    slots
        .into_iter()
        .flatten()
        .flat_map(|(low, high)| [low, high])
        .collect()
}

/// `0%`, `90%`, `99%`, `99.9%`: the percentile at x = 1/(1−q).
fn nines_label(x: f64) -> String {
    let q = 100.0 * (1.0 - 1.0 / x.max(1.0));
    let decimals = (x.log10().round() as usize).saturating_sub(2);
    format!("{q:.decimals$}%")
}

/// The y axis's top: a little above the highest point.
fn y_top(values: impl Iterator<Item = f64>) -> f64 {
    values.fold(0.0, f64::max).max(1.0) * 1.08
}

/// `200`, `2.5`: a tick in ms without trailing noise.
fn axis_ms(ms: f64) -> String {
    let text = format!("{ms:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

fn pacing_words(summary: &Summary) -> String {
    use super::summary::PacingSummary;
    match summary.pacing {
        PacingSummary::Open { asked_per_s, .. } => {
            format!("open loop, {asked_per_s:.0} /s asked")
        }
        PacingSummary::Closed { concurrency } => {
            format!("closed loop, {concurrency} in flight (blind to stalls)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::summary::fixtures;

    /// The SVG's text elements, as the browser would show them.
    pub(crate) fn texts(svg: &str) -> Vec<String> {
        let document = roxmltree::Document::parse(svg).expect("the plot is well-formed XML");
        let root = document.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert_eq!(
            root.tag_name().namespace(),
            Some("http://www.w3.org/2000/svg")
        );
        root.descendants()
            .filter(|n| n.has_tag_name("text"))
            .map(|n| n.text().unwrap_or_default().trim().to_owned())
            .collect()
    }

    #[test]
    fn the_percentile_plot_has_a_labelled_line_per_variant() {
        for run in [fixtures::open_single(), fixtures::closed_three()] {
            let svg = percentile_spectrum_svg(&run).unwrap();
            let texts = texts(&svg);
            for variant in &run.variants {
                assert!(
                    texts.contains(&variant.label),
                    "{} in {texts:?}",
                    variant.label
                );
            }
            for label in ["0%", "90%", "99%", "99.9%", "percentile", "latency (ms)"] {
                assert!(texts.iter().any(|t| t == label), "{label} in {texts:?}");
            }
            // One line per variant, plus the legend's sample of each.
            let document = roxmltree::Document::parse(&svg).unwrap();
            let lines = document
                .descendants()
                .filter(|n| n.has_tag_name("polyline"))
                .filter(|n| n.attribute("stroke-width") == Some("2"))
                .count();
            assert_eq!(lines, 2 * run.variants.len(), "{svg}");
        }
    }

    #[test]
    fn the_over_time_plot_has_a_labelled_series_per_variant() {
        for run in [fixtures::open_single(), fixtures::closed_three()] {
            let svg = latency_over_time_svg(&run).unwrap();
            let texts = texts(&svg);
            for variant in &run.variants {
                assert!(
                    texts.contains(&variant.label),
                    "{} in {texts:?}",
                    variant.label
                );
            }
            let document = roxmltree::Document::parse(&svg).unwrap();
            let circles = document
                .descendants()
                .filter(|n| n.has_tag_name("circle"))
                .count();
            let answered = run
                .records
                .iter()
                .filter(|r| is_success(&r.outcome))
                .count();
            // Every answered request, and one legend sample per variant.
            assert_eq!(circles, answered + run.variants.len());
        }
    }

    #[test]
    fn a_stall_is_a_wall_over_time() {
        let run = fixtures::open_single();
        let points = over_time(&run, 0);
        let in_stall = |p: &&Point| (5.0..6.0).contains(&p.0);
        let slowest_outside = points
            .iter()
            .filter(|p| !in_stall(p))
            .map(|p| p.1)
            .fold(0.0, f64::max);
        assert!(points
            .iter()
            .filter(in_stall)
            .all(|p| p.1 > slowest_outside));
    }

    #[test]
    fn many_requests_are_thinned_keeping_the_extremes() {
        let mut run = fixtures::open_single();
        let records = run.records.clone();
        for copy in 1..10 {
            run.records.extend(records.iter().cloned().map(|mut r| {
                r.intended += std::time::Duration::from_secs(10 * copy);
                r
            }));
        }
        let points = over_time(&run, 0);
        assert!(points.len() <= 2 * TIME_SLOTS, "{}", points.len());
        let max = |ps: &[Point]| ps.iter().map(|p| p.1).fold(0.0, f64::max);
        let all: Vec<_> = run
            .records
            .iter()
            .map(|r| (0.0, r.latency.as_secs_f64() * 1000.0, true))
            .collect();
        assert_eq!(max(&points), max(&all));
    }

    #[test]
    fn ticks_read_as_plain_numbers() {
        assert_eq!(axis_ms(1000.0), "1000");
        assert_eq!(axis_ms(0.30000000000000004), "0.3");
        assert_eq!(axis_ms(0.0), "0");
        assert_eq!(axis_ms(2.5), "2.5");
    }

    #[test]
    fn the_nines_read_as_percentiles() {
        assert_eq!(nines_label(1.0), "0%");
        assert_eq!(nines_label(10.0), "90%");
        assert_eq!(nines_label(100.0), "99%");
        assert_eq!(nines_label(1000.0), "99.9%");
        assert_eq!(nines_label(10_000.0), "99.99%");
    }

    #[test]
    fn an_empty_run_still_draws() {
        let mut run = fixtures::closed_three();
        run.records.clear();
        texts(&percentile_spectrum_svg(&run).unwrap());
        texts(&latency_over_time_svg(&run).unwrap());
    }
}
