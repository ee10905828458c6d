//! `GET /dashboard?period=YYYY-MM[&status=…][&kind=…][&landlord_id=…][&page=N][&exceptions_page=N]`:
//! one server-rendered page for a person, small at any size: the summary first
//! (collected against expected per currency, the last twelve months with a
//! link per month, lines per status), then the exceptions and the lines, each
//! a page at a time, filterable by landlord, exceptions by kind and lines by
//! status. Plain links and a form: no JavaScript.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use askama::Template;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Deserialize;

use super::auth::DashboardAdmin;
use crate::domain::{ExceptionKind, LineStatus, Period};
use crate::error::ApiError;
use crate::format::money;
use crate::recon::render::{HtmlLine, html_lines};
use crate::recon::{self, Exception, Line, Piece, Reconciliation, Total};
use crate::report::render::ExceptionRow;
use crate::startup::AppState;
use crate::store::{Storage, StoreError};

/// Lines and exceptions shown a page at a time.
const LINES_PER_PAGE: usize = 100;
const EXCEPTIONS_PER_PAGE: usize = 50;

#[derive(Debug, Deserialize)]
pub struct DashboardQuery {
    period: Option<String>,
    status: Option<String>,
    kind: Option<String>,
    landlord_id: Option<String>,
    page: Option<usize>,
    exceptions_page: Option<usize>,
}

/// One page (1-based) of items seen one at a time: the page asked for, or
/// the last one if that is past the end. Holds two pages at most.
struct Pager<T> {
    page: usize,
    per_page: usize,
    seen: usize,
    wanted: Vec<T>,
    /// The newest page before the wanted one.
    latest: Vec<T>,
}

/// A page of items, the items there are, and (page, pages).
struct Paged<T> {
    items: Vec<T>,
    total: usize,
    at: (usize, usize),
}

impl<T> Pager<T> {
    fn new(page: usize, per_page: usize) -> Self {
        Self {
            page: page.max(1),
            per_page,
            seen: 0,
            wanted: Vec::new(),
            latest: Vec::new(),
        }
    }

    fn push(&mut self, item: T) {
        let page = self.seen / self.per_page + 1;
        if page == self.page {
            self.wanted.push(item);
        } else if page < self.page {
            if self.seen % self.per_page == 0 {
                self.latest.clear();
            }
            self.latest.push(item);
        }
        self.seen += 1;
    }

    fn finish(self) -> Paged<T> {
        let pages = self.seen.div_ceil(self.per_page).max(1);
        let past_the_end = self.page > pages;
        Paged {
            items: if past_the_end {
                self.latest
            } else {
                self.wanted
            },
            total: self.seen,
            at: (self.page.min(pages), pages),
        }
    }
}

/// The dashboard's filters, as the form and the page links carry them.
struct Filters {
    status: String,
    kind: String,
    landlord: String,
}

/// A link to another page of the dashboard, keeping the filters (encoded:
/// a landlord id may hold `&` or `#`).
fn link(period: &str, filters: &Filters, page: usize, exceptions_page: usize) -> String {
    let (page, exceptions_page) = (page.to_string(), exceptions_page.to_string());
    let query: Vec<(&str, &str)> = [
        ("period", period),
        ("page", &page),
        ("exceptions_page", &exceptions_page),
        ("status", &filters.status),
        ("kind", &filters.kind),
        ("landlord_id", &filters.landlord),
    ]
    .into_iter()
    .filter(|(_, value)| !value.is_empty())
    .collect();
    let query = serde_urlencoded::to_string(query).expect("pairs of text encode");
    format!("/dashboard?{query}")
}

/// One currency's pair of bars; widths in pixels out of `CHART_WIDTH`.
struct ChartRow {
    y: u32,
    currency: String,
    expected: String,
    collected: String,
    expected_width: u32,
    collected_width: u32,
}

const CHART_WIDTH: u32 = 420;

/// One month of the twelve-month chart: its pair of bars (heights and tops
/// in pixels out of `HISTORY_HEIGHT`), label, link and exact amounts.
struct MonthBars {
    x: u32,
    label: String,
    href: String,
    title: String,
    expected_y: u32,
    expected_height: u32,
    collected_y: u32,
    collected_height: u32,
}

/// One currency's last twelve months.
struct HistoryChart {
    currency: String,
    months: Vec<MonthBars>,
}

const HISTORY_HEIGHT: u32 = 140;
/// Pixels a month takes across.
const HISTORY_STEP: u32 = 58;

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    period: String,
    as_of: String,
    chart: Vec<ChartRow>,
    chart_height: u32,
    history: Vec<HistoryChart>,
    status_counts: Vec<(&'static str, usize)>,
    statuses: Vec<&'static str>,
    kinds: Vec<&'static str>,
    status: String,
    kind: String,
    landlord: String,
    exceptions_total: usize,
    exceptions: Vec<ExceptionRow>,
    exceptions_pages: (usize, usize),
    lines_total: usize,
    lines: Vec<HtmlLine>,
    lines_pages: (usize, usize),
    previous_lines: Option<String>,
    next_lines: Option<String>,
    previous_exceptions: Option<String>,
    next_exceptions: Option<String>,
}

fn chart(totals: &[Total]) -> Vec<ChartRow> {
    totals
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let scale = t.expected.max(t.collected).max(1) as f64;
            let width =
                |amount: i64| ((amount as f64 / scale) * f64::from(CHART_WIDTH)).round() as u32;
            ChartRow {
                y: i as u32 * 64,
                currency: t.currency.code().to_uppercase(),
                expected: money(t.expected, t.currency),
                collected: money(t.collected, t.currency),
                expected_width: width(t.expected),
                collected_width: width(t.collected),
            }
        })
        .collect()
}

/// Collected against expected per month, a chart per currency, each scaled
/// to its largest month (pure).
fn history_charts(months: &[(Period, Vec<recon::Total>)]) -> Vec<HistoryChart> {
    let mut currencies: Vec<_> = months
        .iter()
        .flat_map(|(_, totals)| totals.iter().map(|t| t.currency))
        .collect();
    currencies.sort();
    currencies.dedup();
    currencies
        .into_iter()
        .map(|currency| {
            let of = |totals: &[recon::Total]| {
                totals
                    .iter()
                    .find(|t| t.currency == currency)
                    .map_or((0, 0), |t| (t.expected, t.collected))
            };
            let scale = months
                .iter()
                .map(|(_, totals)| {
                    let (expected, collected) = of(totals);
                    expected.max(collected)
                })
                .max()
                .unwrap_or(0)
                .max(1) as f64;
            let height =
                |amount: i64| ((amount as f64 / scale) * f64::from(HISTORY_HEIGHT)).round() as u32;
            let months = months
                .iter()
                .enumerate()
                .map(|(i, (period, totals))| {
                    let (expected, collected) = of(totals);
                    let (expected_height, collected_height) = (height(expected), height(collected));
                    MonthBars {
                        x: 40 + i as u32 * HISTORY_STEP,
                        label: period.day(1).strftime("%b %y").to_string(),
                        href: format!("/dashboard?period={period}"),
                        title: format!(
                            "{period}: collected {} of {} expected",
                            money(collected, currency),
                            money(expected, currency)
                        ),
                        expected_y: HISTORY_HEIGHT + 10 - expected_height,
                        expected_height,
                        collected_y: HISTORY_HEIGHT + 10 - collected_height,
                        collected_height,
                    }
                })
                .collect();
            HistoryChart {
                currency: currency.code().to_uppercase(),
                months,
            }
        })
        .collect()
}

/// What one dashboard page shows of a period, gathered as its lines are
/// reconciled: counts and totals of every line, one page of lines and of
/// exceptions.
struct Shown {
    totals: Vec<Total>,
    status_counts: Vec<(&'static str, usize)>,
    exceptions: Paged<ExceptionRow>,
    lines: Paged<Line>,
}

fn gather(
    store: &dyn Storage,
    period: Period,
    today: Date,
    timezone: &TimeZone,
    filters: &Filters,
    (lines_page, exceptions_page): (usize, usize),
) -> Result<Shown, StoreError> {
    let landlord = filters.landlord.as_str();
    let line_filter = recon::LineFilter {
        status: LineStatus::parse(&filters.status),
        landlord_id: Some(landlord.to_string()).filter(|l| !l.is_empty()),
        property_id: None,
    };
    let kind = ExceptionKind::parse(&filters.kind);
    let wanted = |e: &Exception| {
        (landlord.is_empty() || e.landlord_id.as_deref() == Some(landlord))
            && kind.is_none_or(|k| e.kind == k)
    };
    let mut counts: HashMap<LineStatus, usize> = HashMap::new();
    let mut exceptions = Pager::new(exceptions_page, EXCEPTIONS_PER_PAGE);
    let mut lines = Pager::new(lines_page, LINES_PER_PAGE);
    let month = period.to_string();
    let summary = recon::reconcile_pieces(store, period, today, timezone, None, &mut |piece| {
        if let Some(exception) = recon::exceptions::of_piece(&month, &piece).filter(|e| wanted(e)) {
            exceptions.push(ExceptionRow::from(&exception));
        }
        if let Piece::Line(line) = piece {
            *counts.entry(line.status).or_default() += 1;
            if line_filter.keeps(&line) {
                lines.push(line);
            }
        }
        Ok(())
    })?;
    let rest = Reconciliation::new(period, today, Vec::new(), summary);
    for exception in recon::exceptions::of_payouts(&rest)
        .iter()
        .filter(|e| wanted(e))
    {
        exceptions.push(ExceptionRow::from(exception));
    }
    Ok(Shown {
        totals: rest.totals,
        status_counts: LineStatus::ALL
            .iter()
            .filter_map(|s| Some((s.as_str(), *counts.get(s).filter(|n| **n > 0)?)))
            .collect(),
        exceptions: exceptions.finish(),
        lines: lines.finish(),
    })
}

pub async fn dashboard(
    _admin: DashboardAdmin,
    query: web::Query<DashboardQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let today = state.clock.now().to_zoned(state.timezone.clone()).date();
    let period = match &query.period {
        Some(text) if !text.is_empty() => text
            .parse::<Period>()
            .map_err(|e| ApiError::InvalidRequest(format!("period: {e}")))?,
        _ => Period::of_date(today),
    };
    let (pool, timezone, monthly) = (
        state.reads.clone(),
        state.timezone.clone(),
        state.monthly.clone(),
    );
    let query = query.into_inner();
    let filters = Filters {
        status: query.status.unwrap_or_default(),
        kind: query.kind.unwrap_or_default(),
        landlord: query.landlord_id.unwrap_or_default(),
    };
    let pages = (query.page.unwrap_or(1), query.exceptions_page.unwrap_or(1));
    let (shown, months, filters) = web::block(move || -> Result<_, ApiError> {
        Ok(pool.read(|store| {
            let shown = gather(store, period, today, &timezone, &filters, pages)?;
            let months = monthly.last_months(store, period, &shown.totals, today, &timezone)?;
            Ok::<_, StoreError>((shown, months, filters))
        })?)
    })
    .await??;
    let (at_line, line_pages) = shown.lines.at;
    let (at_exception, exception_pages) = shown.exceptions.at;
    let period_text = period.to_string();
    let to = |lines_at: usize, exceptions_at: usize| {
        link(&period_text, &filters, lines_at, exceptions_at)
    };
    let chart = chart(&shown.totals);
    let page = DashboardPage {
        period: period_text.clone(),
        as_of: today.to_string(),
        chart_height: (chart.len() as u32 * 64).max(64),
        chart,
        history: history_charts(&months),
        status_counts: shown.status_counts,
        statuses: LineStatus::ALL.iter().map(|s| s.as_str()).collect(),
        kinds: ExceptionKind::ALL.iter().map(|k| k.as_str()).collect(),
        status: filters.status.clone(),
        kind: filters.kind.clone(),
        landlord: filters.landlord.clone(),
        exceptions_total: shown.exceptions.total,
        exceptions: shown.exceptions.items,
        exceptions_pages: shown.exceptions.at,
        lines_total: shown.lines.total,
        lines: html_lines(&shown.lines.items),
        lines_pages: shown.lines.at,
        previous_lines: (at_line > 1).then(|| to(at_line - 1, at_exception)),
        next_lines: (at_line < line_pages).then(|| to(at_line + 1, at_exception)),
        previous_exceptions: (at_exception > 1).then(|| to(at_line, at_exception - 1)),
        next_exceptions: (at_exception < exception_pages).then(|| to(at_line, at_exception + 1)),
    };
    let html = page.render().expect("the dashboard template renders");
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Currency;

    fn total(code: &str, expected: i64, collected: i64) -> recon::Total {
        recon::Total {
            currency: Currency::parse(code).unwrap(),
            expected,
            collected,
            outstanding: (expected - collected).max(0),
            paid_out: 0,
        }
    }

    #[test]
    fn each_currency_is_scaled_to_its_largest_month() {
        let march: Period = "2025-03".parse().unwrap();
        let months = vec![
            (march.previous(), vec![total("eur", 1000, 1000)]),
            (march, vec![total("eur", 2000, 500), total("gbp", 10, 0)]),
        ];
        let charts = history_charts(&months);
        assert_eq!(
            charts
                .iter()
                .map(|c| c.currency.as_str())
                .collect::<Vec<_>>(),
            ["EUR", "GBP"]
        );
        let eur = &charts[0].months;
        assert_eq!(
            (eur[0].expected_height, eur[0].collected_height),
            (HISTORY_HEIGHT / 2, HISTORY_HEIGHT / 2)
        );
        assert_eq!(
            (eur[1].expected_height, eur[1].collected_height),
            (HISTORY_HEIGHT, HISTORY_HEIGHT / 4)
        );
        assert_eq!(
            eur[1].expected_y + eur[1].expected_height,
            HISTORY_HEIGHT + 10
        );
        assert_eq!(eur[1].label, "Mar 25");
        assert_eq!(eur[1].href, "/dashboard?period=2025-03");
        let gbp = &charts[1].months;
        assert_eq!(gbp[0].expected_height, 0, "no rent in gbp that month");
        assert_eq!(gbp[0].title, "2025-02: collected £0.00 of £0.00 expected");
    }

    fn paged(page: usize, items: usize) -> (Vec<usize>, usize, (usize, usize)) {
        let mut pager = Pager::new(page, 2);
        (0..items).for_each(|i| pager.push(i));
        let paged = pager.finish();
        (paged.items, paged.total, paged.at)
    }

    #[test]
    fn a_pager_keeps_the_page_asked_for_or_the_last() {
        assert_eq!(paged(2, 5), (vec![2, 3], 5, (2, 3)));
        assert_eq!(paged(3, 5), (vec![4], 5, (3, 3)));
        assert_eq!(
            paged(9, 5),
            (vec![4], 5, (3, 3)),
            "past the end: the last page"
        );
        assert_eq!(paged(9, 4), (vec![2, 3], 4, (2, 2)));
        assert_eq!(paged(0, 3), (vec![0, 1], 3, (1, 2)), "page 0 is the first");
        assert_eq!(paged(1, 0), (vec![], 0, (1, 1)));
        assert_eq!(paged(4, 0), (vec![], 0, (1, 1)));
    }

    #[test]
    fn page_links_keep_the_filters_encoded() {
        let filters = Filters {
            status: "overdue".into(),
            kind: String::new(),
            landlord: "ll_a&b #1".into(),
        };
        assert_eq!(
            link("2025-03", &filters, 2, 1),
            "/dashboard?period=2025-03&page=2&exceptions_page=1&status=overdue&landlord_id=ll_a%26b+%231"
        );
    }
}
