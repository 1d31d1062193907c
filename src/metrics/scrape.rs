//! One scrape of the target's own metrics (its water level), as the run records it and
//! report.json keeps it. The monitor (`ops::monitor`) takes the scrapes during the run; the
//! finished result and the exporters read them from here.

/// One scrape of one target, as report.json keeps it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScrapeRecord {
    /// Seconds since the monitor started (the run's start, within milliseconds).
    pub t: f64,
    pub target: String,
    /// Each series' value; null when not computable yet (rates) or the metric was missing.
    pub values: indexmap::IndexMap<String, Option<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
